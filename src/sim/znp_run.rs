//! The tokio glue of the simulated ZNP ([`super::znp::SimZnp`]): the stick on the master side
//! of a pty pair, as [`super::run_simulator`] does for the EZSP NCP, with the same devices,
//! images and unplug fault (`zigbee-otad simulate --protocol znp`).

use std::io;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, warn};

use super::device::SimDevice;
use super::ncp::SimEvent;
use super::znp::{SimZnp, SimZnpConfig};
use super::{Pty, SimConfig, SimError, Simulator, now, sleep_until};

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
    let unplug = config.unplug.map(|u| (start + u.after, u.gap));
    let task = tokio::spawn(
        serve(
            stick,
            Some(port),
            unplug,
            config.link_path.clone(),
            event_tx,
            cancel.clone(),
            config.trace_messages,
        )
        .instrument(span),
    );
    Ok(Simulator {
        path,
        link_path: config.link_path,
        events: event_rx,
        cancel,
        task: Some(task),
    })
}

async fn read_port(port: &mut Option<Pty>, buffer: &mut [u8]) -> io::Result<usize> {
    match port {
        Some(port) => port.master.read(buffer).await,
        None => std::future::pending().await,
    }
}

async fn serve(
    mut stick: SimZnp,
    mut port: Option<Pty>,
    mut unplug: Option<(Instant, Duration)>,
    link_path: Option<std::path::PathBuf>,
    events: mpsc::Sender<SimEvent>,
    cancel: CancellationToken,
    trace_messages: bool,
) {
    let mut buffer = [0u8; 512];
    let mut replug_at: Option<Instant> = None;
    loop {
        if let Some(pty) = port.as_mut() {
            while let Some(bytes) = stick.poll_transmit() {
                if let Err(e) = pty.master.write_all(&bytes).await {
                    warn!("pty write failed: {e}");
                    return;
                }
            }
        }
        while let Some(event) = stick.poll_event() {
            let traced = matches!(
                event,
                SimEvent::MessageToHost { .. } | SimEvent::MessageToDevice { .. }
            );
            if traced && !trace_messages {
                continue;
            }
            debug!("{event:?}");
            let _ = events.send(event).await;
        }
        let deadline = stick.poll_timeout();
        let change = match port {
            Some(_) => unplug.map(|(at, _)| at),
            None => replug_at,
        };
        tokio::select! {
            biased;
            _ = cancel.cancelled() => return,
            _ = sleep_until(change) => {
                if let Some(pty) = port.take() {
                    let gap = unplug.take().map_or(Duration::ZERO, |(_, gap)| gap);
                    stick.power_off();
                    if let Some(link) = &link_path {
                        let _ = std::fs::remove_file(link);
                    }
                    warn!("serial port unplugged (simulated): {} is gone for {gap:?}", pty.path);
                    replug_at = Some(now() + gap);
                } else {
                    replug_at = None;
                    match Pty::open(link_path.as_deref()) {
                        Ok(pty) => {
                            warn!("serial port plugged in again (simulated) at {}", pty.path);
                            port = Some(pty);
                            stick.power_on(now());
                        }
                        Err(e) => {
                            warn!("cannot plug the simulated port in again: {e}");
                            return;
                        }
                    }
                }
            }
            read = read_port(&mut port, &mut buffer) => match read {
                Ok(0) => {
                    warn!("pty closed");
                    return;
                }
                Ok(n) => stick.handle_input(buffer.get(..n).unwrap_or_default(), now()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    warn!("pty read failed: {e}");
                    return;
                }
            },
            _ = sleep_until(deadline) => stick.handle_timeout(now()),
        }
    }
}
