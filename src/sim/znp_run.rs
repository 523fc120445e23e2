//! The tokio glue of the simulated ZNP ([`super::znp::SimZnp`]): the stick on the master side
//! of a pty pair, as [`super::run_simulator`] does for the EZSP NCP, with the same devices,
//! images and unplug fault (`zigbee-otad simulate --protocol znp`).

use std::time::Instant;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::device::SimDevice;
use super::ncp::SimEvent;
use super::znp::{SimZnp, SimZnpConfig};
use super::{Plug, Pty, SimConfig, SimError, Simulator, now, serve};

/// Creates the pty pair, puts the simulated ZNP and the devices of `config` on it and returns at
/// once (`config.ncp` is not used: the stick is described by `znp`).
pub async fn run_znp_simulator(
    config: SimConfig,
    znp: SimZnpConfig,
) -> Result<Simulator, SimError> {
    let port = Pty::open(config.link_path.as_deref())?;
    let path = port.path.clone();
    let start = now();
    let devices = config
        .device_configs()
        .into_iter()
        .map(|device| SimDevice::new(device, start))
        .collect();
    let stick = SimZnp::new(znp, devices);
    let (event_tx, event_rx) = mpsc::channel(4096);
    let cancel = CancellationToken::new();
    let span = tracing::info_span!("sim", pty = %path, protocol = "znp");
    let plug = Plug {
        port: Some(port),
        unplug: config.unplug.map(|u| (start + u.after, u.gap)),
        replug_at: None,
        link_path: config.link_path.clone(),
    };
    let task = tokio::spawn(
        serve(stick, plug, event_tx, cancel.clone(), config.trace_messages).instrument(span),
    );
    Ok(Simulator {
        path,
        link_path: config.link_path,
        events: event_rx,
        cancel,
        task: Some(task),
    })
}

impl super::Stick for SimZnp {
    fn handle_input(&mut self, bytes: &[u8], now: Instant) {
        SimZnp::handle_input(self, bytes, now);
    }
    fn handle_timeout(&mut self, now: Instant) {
        SimZnp::handle_timeout(self, now);
    }
    fn poll_transmit(&mut self, _now: Instant) -> Option<Vec<u8>> {
        SimZnp::poll_transmit(self)
    }
    fn poll_event(&mut self) -> Option<SimEvent> {
        SimZnp::poll_event(self)
    }
    fn poll_timeout(&self) -> Option<Instant> {
        SimZnp::poll_timeout(self)
    }
    fn power_off(&mut self) {
        SimZnp::power_off(self);
    }
    fn power_on(&mut self, now: Instant) {
        SimZnp::power_on(self, now);
    }
}
