//! The binary wire protocol.
