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
//! - [`addresses`]: the device table as joins, announces and senders teach it (the proxy's
//!   too).
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

pub mod addresses;
mod driver;
pub mod events;
pub mod host;
pub mod startup;
#[cfg(test)]
mod tests;
pub mod up;

use tokio::sync::mpsc;
use tracing::{Instrument, warn};

use super::handle::{DriverHandle, DriverSetup, RunsBehindHandle};
use super::{CoordinatorConfig, CoordinatorEvent};
use driver::Driver;
pub use host::{EzspHost, HostConfig, HostEvent, RequestFailed, RequestId, SubmitError, Trouble};

/// The file in the state directory that keeps the device table.
pub use super::handle::DEVICE_TABLE_FILE;

/// Tuning knobs of the driver; [`EzspTuning::default`] suits real sticks.
#[derive(Debug, Clone)]
pub struct EzspTuning {
    /// The host's settings: ASH link, EZSP session, timeouts, backoff (its endpoint is
    /// replaced from the [`CoordinatorConfig`]).
    pub host: HostConfig,
    /// Capacity of the command queue between the handle and the driver task.
    pub command_queue: usize,
    /// Capacity of the event channel.
    pub event_queue: usize,
}

impl Default for EzspTuning {
    fn default() -> Self {
        EzspTuning {
            host: HostConfig::new(1),
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
            ..tuning.host
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
