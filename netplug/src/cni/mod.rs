//! The CNI 1.x protocol (https://www.cni.dev/docs/spec/) over the
//! library: the environment ([`request`]), the network configuration on
//! stdin ([`netconf`]), results ([`result`]) and errors ([`error`]) as
//! the spec's JSON, and the verbs ([`plugin`]). Pure parsing and
//! serialization apart from the verbs, so malformed input is unit-tested
//! without root. The `netplug` binary is a thin shell over [`plugin::run`].

pub mod error;
pub mod netconf;
pub mod plugin;
pub mod request;
pub mod result;

pub use error::{code, CniError};
pub use netconf::NetConf;
pub use plugin::run;
pub use request::{Command, Request};
pub use result::CniResult;
