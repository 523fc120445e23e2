//! The EZSP proxy (issue 17): zigbee-otad keeps the stick's serial port and shows an upstream
//! stack (Home Assistant's ZHA through bellows, Zigbee2MQTT's `ember` adapter) a virtual stick
//! over TCP, so both share one coordinator. Upstream speaks ASH (UG101) to us in the NCP role;
//! we speak ASH to the stick in the host role; EZSP frames (UG100) pass through byte for byte,
//! except the OTA cluster, which zigbee-otad answers itself.
//!
//! - [`frames`]: what the proxy reads in a frame, and the few bytes it rewrites.
//! - [`relay`]: the sans-IO core: both links, one command at a time to the stick, upstream's
//!   start-up and resets, the stick's resets.
//! - [`ours`]: what the relay keeps for zigbee-otad: the OTA cluster, our sends and their
//!   reports, our ZCL requests.
//! - [`network`]: the devices (joins, announces) and the network's parameters after `NETWORK_UP`.
//! - [`driver`]: the thin tokio glue (serial port, TCP listener) and the
//!   [`Coordinator`](crate::coordinator::Coordinator) handle the daemon uses,
//!   [`ProxyCoordinator`].
//!
//! ```
//! use std::time::Instant;
//! use zigbee_otad::config::OtaScope;
//! use zigbee_otad::coordinator::DeviceTable;
//! use zigbee_otad::proxy::{Relay, RelayConfig, RelayEvent};
//! let now = Instant::now();
//! let mut relay = Relay::new(RelayConfig::new(OtaScope::All, 1), DeviceTable::default()).unwrap();
//! assert!(matches!(relay.poll_event(), Some(RelayEvent::StateChanged(_))));
//! assert_eq!(relay.poll_event(), Some(RelayEvent::OpenStick));
//! relay.stick_opened(now);
//! // The ASH reset (CANCEL bytes, then RST) goes to the stick.
//! assert!(relay.poll_stick_transmit(now).unwrap().ends_with(&[0xC0, 0x38, 0xBC, 0x7E]));
//! ```

pub mod driver;
pub mod frames;
pub mod network;
pub mod ours;
pub mod relay;
#[cfg(test)]
mod tests;

pub use driver::{ProxyCoordinator, ProxySettings};
pub use relay::{Relay, RelayConfig, RelayEvent, RelayStats};
