//! The daemon: wiring of the coordinator, the OTA server and the catalog into one program, with
//! systemd integration, signals and the status socket (ARCHITECTURE.md, module `daemon`).

pub mod catalog_retry;
pub mod demo;
pub mod identities;
pub mod images;
pub mod logging;
pub mod service;
pub mod socket;
pub mod status;
pub mod systemd;
