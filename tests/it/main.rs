//! Integration tests, built as one binary (STYLE.md rule 30).
#![allow(
    unreachable_pub,
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod ash;
mod authorisation;
mod catalog;
mod catalog_kill;
mod catalog_ledvance;
mod catalog_service;
mod catalog_tls;
mod cli;
mod common;
mod control;
mod coordinator;
mod daemon;
mod export;
mod ezsp;
mod faults;
mod hostile;
mod hostile_catalog;
mod identity;
mod installer;
mod interop;
mod mqtt;
mod ota;
mod proxy;
mod proxy_faults;
mod server;
mod sim;
mod vendor_feeds;
mod vendor_rules;
mod zcl;
mod znp;
mod znp_host;
mod znp_process;
mod znp_ref;
