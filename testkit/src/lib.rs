//! Support for privileged tests.
