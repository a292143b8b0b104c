//! Namespace syscalls (placeholder: being written).
