//! The container process setup (placeholder: being written).
