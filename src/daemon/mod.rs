//! The daemon: wiring of the coordinator, the OTA server and the catalog into one program, with
//! systemd integration, signals, the status socket, Home Assistant over MQTT and the index export
//! (ARCHITECTURE.md, module `daemon`).

pub mod catalog_driver;
pub mod control;
pub mod demo;
pub mod demo_cloud;
pub mod export;
pub mod export_index;
pub mod ha;
pub mod history;
pub mod identities;
pub mod image_file;
pub mod images;
pub mod library_loader;
pub mod log_limit;
pub mod logging;
pub mod loop_lag;
pub mod mqtt;
pub mod outbox;
pub mod service;
pub mod settings;
pub mod socket;
pub mod socket_access;
pub mod status;
pub mod systemd;
