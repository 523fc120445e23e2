//! Fuzzing entry points (enabled by the `fuzzing` feature): each runs one decoder or state
//! machine on arbitrary bytes and asserts its invariants. The targets in `fuzz/fuzz_targets/`
//! are one-line calls into these functions, as in rustls and quinn.

pub mod ash;
pub mod catalog;
pub mod daemon;
pub mod ezsp;
pub mod ezsp_host;
pub mod ota;
pub mod proxy;
pub mod server;
pub mod sim;
pub mod socket;
pub mod zcl;
pub mod znp;
