//! A simulated EZSP coordinator with simulated OTA client devices, on a pseudo-terminal, so any
//! EZSP host (ours, bellows, zigbee-herdsman) can drive it without hardware (ARCHITECTURE.md,
//! "Testing layers" 3-4; STYLE.md rule 33).
//!
//! - [`device`]: a sans-IO OTA client that performs a real upgrade over ZCL and checks the image.
//! - [`ncp`]: a sans-IO NCP built from the same [`crate::ash`] and [`crate::ezsp`] code, in the
//!   NCP role, with the devices behind a radio delay.
//! - [`faults`]: lost and damaged frames, failed or late delivery reports, a full transmit
//!   queue, an NCP reset at a chosen moment.
//! - [`run_simulator`]: the tokio glue: the NCP on the master side of a pty pair; the slave's
//!   path is what a host opens (`zigbee-otad simulate` prints it).
//!
//! `zigbee-otad simulate [--devices N] [--device MFR:TYPE:VERSION[:HW[:MAXDATA]]]...
//! [--link PATH] [--ezsp-version N]` is a thin wrapper: parse each `--device` with
//! [`SimDeviceSpec::from_str`](std::str::FromStr), call [`SimConfig::add_default_devices`] for
//! `--devices`, set [`SimConfig::link_path`] and `ncp.ezsp_version`, then
//! [`run_simulator`]; print [`Simulator::path`] on the first line and every
//! [`device::DeviceEvent::UpgradeEnded`] report (its `Display` says verified or not) from
//! [`Simulator::events`]. Put the images the devices should receive in [`SimConfig::images`]
//! for a byte-exact check.
//!
//! ```
//! use zigbee_otad::sim::{SimConfig, SimDeviceSpec};
//! let mut config = SimConfig::default();
//! config.devices.push("0x1189:0x0005:0x01020304:1:64".parse::<SimDeviceSpec>().unwrap());
//! config.add_default_devices(2);
//! let devices = config.device_configs();
//! assert_eq!(devices.len(), 3);
//! assert_eq!(devices[0].spec.max_data_size, 64);
//! assert_ne!(devices[0].nwk, devices[1].nwk);
//! ```

pub mod device;
pub mod faults;
pub mod ncp;

use std::collections::HashMap;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_serial::SerialStream;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, warn};

pub use device::{SimDeviceConfig, SimDeviceSpec, UpgradeOutcome, UpgradeReport};
pub use faults::Faults;
pub use ncp::{SimEvent, SimNcp, SimNcpConfig};

use crate::coordinator::{Ieee, Nwk};
use device::SimDevice;

/// The device `--devices N` adds: manufacturer 0x1189 (LEDVANCE), image type 0x0001, version 1,
/// no hardware version, 50-byte blocks.
pub const DEFAULT_DEVICE: SimDeviceSpec = SimDeviceSpec {
    manufacturer_code: 0x1189,
    image_type: 0x0001,
    file_version: 0x0000_0001,
    hardware_version: None,
    max_data_size: SimDeviceSpec::DEFAULT_MAX_DATA_SIZE,
};

/// Everything the simulator needs.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// The NCP: EZSP version, radio delay, faults, ...
    pub ncp: SimNcpConfig,
    /// One entry per simulated device.
    pub devices: Vec<SimDeviceSpec>,
    /// The exact image each (manufacturer, image type) should receive; devices without one
    /// check the OTA header and size only.
    pub images: HashMap<(u16, u16), Arc<Vec<u8>>>,
    /// Also make this path a symlink to the pty (like socat's `link=`).
    pub link_path: Option<PathBuf>,
    /// One-way radio delay between the NCP and every device.
    pub radio_delay: Duration,
    /// Devices (by index in `devices`) that are sleepy end devices polling their parent at the
    /// given interval: every frame to or from them waits up to one poll more, and they wake
    /// for their first query later than the others.
    pub sleepy_devices: HashMap<usize, Duration>,
    /// When devices first query after start.
    pub first_query_after: Duration,
    /// How often idle devices query.
    pub query_interval: Duration,
    /// How long devices wait for an answer before asking again.
    pub response_timeout: Duration,
    /// Unanswered requests in a row after which a device gives up a download.
    pub max_retries: u32,
    /// Also report every message between the NCP and the host or devices
    /// ([`SimEvent::MessageToHost`], [`SimEvent::MessageToDevice`]).
    pub trace_messages: bool,
}

impl Default for SimConfig {
    /// EZSP v13, no devices, 10 ms radio delay, devices query 2 s after start and every 60 s,
    /// 5 s answer timeout.
    fn default() -> Self {
        SimConfig {
            ncp: SimNcpConfig::default(),
            devices: Vec::new(),
            images: HashMap::new(),
            link_path: None,
            radio_delay: Duration::from_millis(10),
            sleepy_devices: HashMap::new(),
            first_query_after: Duration::from_secs(2),
            query_interval: Duration::from_secs(60),
            response_timeout: Duration::from_secs(5),
            max_retries: 10,
            trace_messages: false,
        }
    }
}

impl SimConfig {
    /// Adds `count` devices of the [`DEFAULT_DEVICE`] kind.
    pub fn add_default_devices(&mut self, count: usize) {
        self.devices
            .extend(std::iter::repeat_n(DEFAULT_DEVICE, count));
    }

    /// The devices with their addresses: device `i` gets NWK `0x1000 + 0x101·i` (wrapping
    /// below the broadcast range) and IEEE `00:12:4b:00:00:00:xx:xx` with `xx:xx = i + 1`.
    pub fn device_configs(&self) -> Vec<SimDeviceConfig> {
        self.devices
            .iter()
            .enumerate()
            .map(|(index, spec)| {
                let i = u16::try_from(index).unwrap_or(u16::MAX);
                let nwk = 0x1000u16.wrapping_add(i.wrapping_mul(0x101)) % 0xFFF0 + 1;
                let mut device = SimDeviceConfig::new(
                    Nwk(nwk),
                    Ieee(0x0012_4B00_0000_0000 | (u64::from(i) + 1)),
                    *spec,
                );
                device.radio_delay = self.radio_delay;
                device.first_query_after = self.first_query_after;
                if let Some(poll) = self.sleepy_devices.get(&index) {
                    device.radio_delay += *poll;
                    device.first_query_after += *poll * 4;
                }
                device.query_interval = self.query_interval;
                device.response_timeout = self.response_timeout;
                device.max_retries = self.max_retries;
                device.expected_image = self
                    .images
                    .get(&(spec.manufacturer_code, spec.image_type))
                    .cloned();
                device
            })
            .collect()
    }
}

/// The simulator could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SimError {
    /// The pseudo-terminal could not be created.
    #[error("cannot create a pseudo-terminal: {0}")]
    Pty(#[source] tokio_serial::Error),
    /// The NCP configuration is invalid.
    #[error(transparent)]
    Ncp(#[from] ncp::SimNcpError),
    /// The `--link` symlink could not be made.
    #[error("cannot link {path} to the pty: {source}")]
    Link {
        /// The link path.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
}

/// A running simulator.
#[derive(Debug)]
pub struct Simulator {
    path: String,
    link_path: Option<PathBuf>,
    /// What happens: device upgrade reports, NCP resets, endpoint registrations, ...
    pub events: mpsc::Receiver<SimEvent>,
    cancel: CancellationToken,
    task: Option<JoinHandle<()>>,
}

impl Simulator {
    /// The pty path a host opens (`/dev/pts/N`).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The symlink made for `link_path`, if any.
    pub fn link_path(&self) -> Option<&PathBuf> {
        self.link_path.as_ref()
    }

    /// Stops the simulator (the pty closes, so a connected host sees the port vanish), waits
    /// for its task and removes the symlink. Dropping a `Simulator` stops it too, without
    /// waiting.
    pub async fn shutdown(mut self) {
        self.cancel.cancel();
        if let Some(task) = self.task.take()
            && let Err(e) = task.await
        {
            warn!("simulator task ended abnormally: {e}");
        }
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        self.cancel.cancel();
        if let Some(link) = &self.link_path {
            let _ = std::fs::remove_file(link);
        }
    }
}

/// Creates the pty pair, puts the simulated NCP and devices on it and returns at once; the
/// simulator runs on the current tokio runtime until [`Simulator::shutdown`] or until dropped.
pub async fn run_simulator(config: SimConfig) -> Result<Simulator, SimError> {
    let (master, slave) = SerialStream::pair().map_err(SimError::Pty)?;
    let path = tokio_serial::SerialPort::name(&slave).unwrap_or_default();
    if let Some(link) = &config.link_path {
        if std::fs::symlink_metadata(link).is_ok() {
            let _ = std::fs::remove_file(link);
        }
        std::os::unix::fs::symlink(&path, link).map_err(|source| SimError::Link {
            path: link.clone(),
            source,
        })?;
    }
    let start = now();
    let devices = config
        .device_configs()
        .into_iter()
        .map(|device| SimDevice::new(device, start))
        .collect();
    let ncp = SimNcp::new(config.ncp.clone(), devices)?;
    let (event_tx, event_rx) = mpsc::channel(4096);
    let cancel = CancellationToken::new();
    let span = tracing::info_span!(
        "sim",
        pty = %path,
        ezsp_version = config.ncp.ezsp_version
    );
    let task = tokio::spawn(
        serve(
            ncp,
            master,
            slave,
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

fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

/// Runs the NCP on the pty master. The slave stays open here so the master never reads EIO
/// while no host has the port open.
async fn serve(
    mut ncp: SimNcp,
    mut master: SerialStream,
    slave: SerialStream,
    events: mpsc::Sender<SimEvent>,
    cancel: CancellationToken,
    trace_messages: bool,
) {
    let _slave = slave;
    let mut buffer = [0u8; 512];
    loop {
        while let Some(bytes) = ncp.poll_transmit(now()) {
            if let Err(e) = master.write_all(&bytes).await {
                warn!("pty write failed: {e}");
                return;
            }
        }
        while let Some(event) = ncp.poll_event() {
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
        let deadline = ncp.poll_timeout();
        let sleep = async {
            match deadline {
                Some(at) => tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            _ = cancel.cancelled() => return,
            read = master.read(&mut buffer) => match read {
                Ok(0) => {
                    warn!("pty closed");
                    return;
                }
                Ok(n) => ncp.handle_input(buffer.get(..n).unwrap_or_default(), now()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    warn!("pty read failed: {e}");
                    return;
                }
            },
            _ = sleep => ncp.handle_timeout(now()),
        }
    }
}
