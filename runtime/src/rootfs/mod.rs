//! The container filesystem (placeholder: being written).
