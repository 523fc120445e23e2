//! The subcommands of the command line, one file per group (ARCHITECTURE.md, "Command line":
//! a stable interface). `main.rs` holds the argument tree and dispatches here.

pub(crate) mod catalog;
pub(crate) mod control;
pub(crate) mod decode;
pub(crate) mod simulate;
