//! The tokio glue of the simulated ZNP ([`super::znp::SimZnp`]): the stick on the master side
//! of a pty pair, as [`super::run_simulator`] does for the EZSP NCP, with the same devices,
//! images and unplug fault (`zigbee-otad simulate --protocol znp`).

use std::time::Instant;

use super::znp::{SimZnp, SimZnpConfig};
use super::{SimConfig, SimError, SimEvent, Simulator, run_stick};

/// Creates the pty pair, puts the simulated ZNP and the devices of `config` on it and returns at
/// once (`config.ncp` is not used: the stick is described by `znp`).
pub async fn run_znp_simulator(
    config: SimConfig,
    znp: SimZnpConfig,
) -> Result<Simulator, SimError> {
    let span = |pty: &str| tracing::info_span!("sim", pty = %pty, protocol = "znp");
    run_stick(config, span, |devices| Ok(SimZnp::new(znp, devices)))
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
