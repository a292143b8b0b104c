//! What `ctl` prints and advises, apart from its flag parsing: tables
//! aligned as kubectl aligns them ([`table`]), the columns of each kind
//! ([`columns`]), where to connect ([`config`]), one object for a person to read ([`describe`]), whether
//! an apply changes anything ([`apply`]), what to do next when a call
//! fails ([`hint`]), and the `logs` and `exec` streams ([`stream`], with
//! the local terminal in [`terminal`]).

pub mod apply;
pub mod columns;
pub mod config;
pub mod describe;
pub mod hint;
pub mod stream;
pub mod table;
pub mod terminal;
