//! Typed errors on the wire: a code a program can branch on, a message a
//! person can read, and the fields at fault.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use serde::{Deserialize, Serialize};

/// What kind of failure a response reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(arbitrary::Arbitrary))]
pub enum ErrorCode {
    NotFound,
    AlreadyExists,
    /// A compare-and-swap lost: the object changed since it was read.
    Conflict,
    /// The object failed validation; `causes` names the fields.
    Invalid,
    /// No or bad credentials.
    Unauthorized,
    /// The identity may not do this.
    Forbidden,
    /// A frame or object over the size limit.
    TooLarge,
    /// Try again later (shutting down, overloaded, store unreachable).
    Unavailable,
    Internal,
    /// A malformed frame or a message that makes no sense here.
    BadRequest,
    /// A watch asked for a revision that was compacted: list again.
    Expired,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::NotFound => "NotFound",
            ErrorCode::AlreadyExists => "AlreadyExists",
            ErrorCode::Conflict => "Conflict",
            ErrorCode::Invalid => "Invalid",
            ErrorCode::Unauthorized => "Unauthorized",
            ErrorCode::Forbidden => "Forbidden",
            ErrorCode::TooLarge => "TooLarge",
            ErrorCode::Unavailable => "Unavailable",
            ErrorCode::Internal => "Internal",
            ErrorCode::BadRequest => "BadRequest",
            ErrorCode::Expired => "Expired",
        }
    }
}

/// One field at fault (`spec.containers[0].image`: "Required value").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(arbitrary::Arbitrary))]
pub struct Cause {
    pub field: String,
    pub message: String,
}

/// An error response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(arbitrary::Arbitrary))]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    pub causes: Vec<Cause>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            message: message.into(),
            causes: Vec::new(),
        }
    }

    pub fn with_cause(mut self, field: impl Into<String>, message: impl Into<String>) -> ApiError {
        self.causes.push(Cause {
            field: field.into(),
            message: message.into(),
        });
        self
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)?;
        for c in &self.causes {
            write!(f, "; {}: {}", c.field, c.message)?;
        }
        Ok(())
    }
}

impl core::error::Error for ApiError {}

impl From<crate::validate::FieldErrors> for ApiError {
    /// Validation failures become `Invalid` with one cause per field.
    fn from(errors: crate::validate::FieldErrors) -> ApiError {
        use alloc::string::ToString;
        let mut e = ApiError::new(ErrorCode::Invalid, errors.to_string());
        for fe in &errors.0 {
            let text = fe.to_string();
            let message = text
                .strip_prefix(fe.field.as_str())
                .and_then(|m| m.strip_prefix(": "))
                .unwrap_or(&text);
            e.causes.push(Cause {
                field: fe.field.clone(),
                message: message.into(),
            });
        }
        e
    }
}
