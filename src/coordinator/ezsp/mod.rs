//! The EZSP coordinator: the sans-IO [`host::EzspHost`] (start-up, sends, callbacks, recovery;
//! UG100 for EZSP, UG101 for ASH) run over a serial port by the thin tokio [`driver`]
//! (STYLE.md rules 9 and 11), behind the [`Coordinator`](super::Coordinator) handle [`EzspCoordinator`] (the
//! [`DriverHandle`] every driver shares).
//!
//! - [`host`]: the state machine and its verbs; the module docs say what it owns and how the
//!   EZSP proxy (issue 17) will reuse it.
//! - [`events`]: the host's settings, events and errors.
//! - [`startup`]: reset, version, configuration, endpoint, resume or form, up.
//! - [`up`]: sends and delivery reports, callbacks, address lookups.
//! - [`driver`]: bytes between the port and the host, commands in, events out.
//!
//! ```no_run
//! # async fn demo() {
//! use zigbee_otad::coordinator::{Coordinator, CoordinatorConfig, FlowControl, SerialConfig};
//! use zigbee_otad::coordinator::ezsp::EzspCoordinator;
//! let (coordinator, mut events) = EzspCoordinator::start(CoordinatorConfig {
//!     serial: SerialConfig { path: "/dev/ttyUSB0".into(), baudrate: 115_200, flow_control: FlowControl::Software },
//!     state_dir: "/var/lib/zigbee-otad".into(),
//!     network: Default::default(),
//!     endpoint: 1,
//! });
//! while let Some(event) = events.recv().await {
//!     println!("{event:?} (state {:?})", coordinator.state());
//! }
//! # }
//! ```

mod driver;
pub mod events;
pub mod host;
pub mod startup;
#[cfg(test)]
mod tests;
pub mod up;

use std::time::Duration;

use tokio::sync::mpsc;
use tracing::{Instrument, warn};

use super::handle::{DriverHandle, DriverSetup, RunsBehindHandle};
use super::serial::Backoff;
use super::{CoordinatorConfig, CoordinatorEvent};
use crate::ash::LinkConfig;
use crate::ezsp::SessionConfig;
use driver::Driver;
pub use host::{EzspHost, HostConfig, HostEvent, RequestFailed, RequestId, SubmitError, Trouble};

/// The file in the state directory that keeps the device table.
pub use super::handle::DEVICE_TABLE_FILE;

/// Tuning knobs of the driver; [`EzspTuning::default`] suits real sticks.
#[derive(Debug, Clone)]
pub struct EzspTuning {
    /// ASH link parameters (window, timers).
    pub link: LinkConfig,
    /// EZSP session parameters (version asked for first, command timeout, pending limit).
    pub session: SessionConfig,
    /// How long to wait for `NETWORK_UP` after `networkInit` or `formNetwork`.
    pub network_up_timeout: Duration,
    /// After this long without a frame from the NCP, a `nop` checks that it is still there and
    /// still negotiated (an NCP whose unsolicited RSTACK was lost answers `invalidCommand`).
    pub keepalive_interval: Duration,
    /// How long a send may wait for its `messageSentHandler` before it is reported timed out.
    pub delivery_timeout: Duration,
    /// Delay before reopening a vanished port or restarting a reset NCP.
    pub backoff: Backoff,
    /// Capacity of the command queue between the handle and the driver task.
    pub command_queue: usize,
    /// Capacity of the event channel.
    pub event_queue: usize,
}

impl Default for EzspTuning {
    fn default() -> Self {
        let host = HostConfig::new(1);
        EzspTuning {
            link: host.link,
            session: host.session,
            network_up_timeout: host.network_up_timeout,
            keepalive_interval: host.keepalive_interval,
            delivery_timeout: host.delivery_timeout,
            backoff: host.backoff,
            command_queue: 64,
            event_queue: 1024,
        }
    }
}

/// The handle of a running EZSP driver; implements [`Coordinator`](super::Coordinator).
#[derive(Debug)]
pub struct EzspCoordinator {
    handle: DriverHandle,
}

impl EzspCoordinator {
    /// Starts the driver task on the current tokio runtime (call it from within one) with
    /// default tuning. Events arrive on the returned receiver; the first is
    /// `StateChanged(Starting)`. Dropping the handle stops the driver.
    pub fn start(config: CoordinatorConfig) -> (Self, mpsc::Receiver<CoordinatorEvent>) {
        Self::start_with(config, EzspTuning::default())
    }

    /// Like [`EzspCoordinator::start`] with explicit tuning.
    pub fn start_with(
        config: CoordinatorConfig,
        tuning: EzspTuning,
    ) -> (Self, mpsc::Receiver<CoordinatorEvent>) {
        let setup = DriverSetup {
            what: "coordinator",
            protocol: "ezsp",
            measures_latency: true,
            command_queue: tuning.command_queue,
            event_queue: tuning.event_queue,
        };
        let (handle, task, events) = DriverHandle::new(setup, &config.state_dir);
        let span = tracing::info_span!(
            "ncp",
            port = %config.serial.path,
            ezsp_version = tracing::field::Empty
        );
        let host_config = HostConfig {
            endpoint: config.endpoint,
            link: tuning.link.clone(),
            session: tuning.session,
            network_up_timeout: tuning.network_up_timeout,
            keepalive_interval: tuning.keepalive_interval,
            delivery_timeout: tuning.delivery_timeout,
            backoff: tuning.backoff.clone(),
        };
        let devices = task.shared.lock().devices.clone();
        match EzspHost::new(host_config, devices, super::driver_io::now()) {
            Ok(host) => {
                let driver = Driver { config, host, task };
                handle.attach(tokio::spawn(driver.run().instrument(span)));
            }
            Err(e) => {
                warn!("ASH link configuration: {e}; the coordinator stays stopped");
                handle.stopped();
            }
        }
        (EzspCoordinator { handle }, events)
    }

    /// Stops the driver and waits for its task to end (the port is closed).
    pub async fn shutdown(&self) {
        self.handle.shutdown().await;
    }
}

impl RunsBehindHandle for EzspCoordinator {
    fn driver_handle(&self) -> &DriverHandle {
        &self.handle
    }
}
