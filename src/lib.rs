//! zigbee-otad: a Zigbee OTA Upgrade server daemon for home gateways.
//!
//! The modules follow the data flow drawn in ARCHITECTURE.md:
//! serial port → [`ash`] → [`ezsp`] → coordinator driver → [`zcl`] → OTA server → catalog → [`ota`] files.
//! The protocol and policy modules are sans-IO: bytes, events and `now` in; bytes, events and
//! deadlines out.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod ash;
pub mod atomic_file;
pub mod catalog;
pub mod config;
pub mod coordinator;
pub mod daemon;
pub mod ezsp;
pub mod identity;
pub mod ota;
pub mod proxy;
pub mod pty;
pub mod server;
pub mod sim;
pub mod wire;
pub mod zcl;
pub mod zigbee;
pub mod znp;

/// Entry points for the cargo-fuzz targets in `fuzz/` (enabled by the `fuzzing` feature).
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
