//! Mount-related syscalls (placeholder: being written).
