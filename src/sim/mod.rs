//! A simulated EZSP coordinator with simulated OTA client devices, on a pseudo-terminal, so any
//! EZSP host (ours, bellows, zigbee-herdsman) can drive it without hardware (ARCHITECTURE.md,
//! "Testing layers" 3-4; STYLE.md rule 33).
//!
//! - [`device`]: a sans-IO OTA client that performs a real upgrade over ZCL and checks the image;
//!   [`device_spec`] is its `--device` text form, [`device_report`] what it reports.
//! - [`ncp`]: a sans-IO NCP built from the same [`crate::ash`] and [`crate::ezsp`] code, in the
//!   NCP role, with the devices behind a radio delay.
//! - [`stack`]: the stack tables behind the frames other hosts send (keys, tokens, multicast,
//!   scans, child and address tables), per EZSP version.
//! - [`zdo`]: the NCP's own ZDO server, for requests a host sends to the coordinator itself.
//! - [`znp`]: the simulated ZNP stick ([`run_znp_simulator`]), the same devices behind TI's MT
//!   protocol.
//! - `radio` (private): what both sticks do the same way below their serial protocol: the
//!   devices on the air and their timers, the schedule, the unicast transmit queue, the
//!   serial line's faults and the unsolicited resets; and [`SimEvent`], what a stick reports.
//! - [`faults`]: lost and damaged frames, failed or late delivery reports, a full transmit
//!   queue, NCP resets at a chosen moment or periodically.
//! - [`run_simulator`]: the tokio glue: the NCP on the master side of a pty pair; the slave's
//!   path is what a host opens (`zigbee-otad simulate` prints it). [`SimConfig::unplug`]
//!   makes that port vanish and come back as a new pty (a USB stick unplugged and plugged in
//!   again) while the devices carry on.
//!
//! `zigbee-otad simulate [--devices N] [--device MFR:TYPE:VERSION[:HW[:MAXDATA]]]...
//! [--link PATH] [--ezsp-version N] [--fresh]` (plus fault flags such as `--loss`, `--reset-every SECS`,
//! `--unplug-after SECS --unplug-for SECS`) is a thin wrapper: parse each `--device` with
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
pub mod device_report;
pub mod device_spec;
pub mod faults;
pub mod hostile;
pub mod ncp;
mod radio;
pub mod stack;
pub mod zdo;
pub mod znp;
pub mod znp_nv;
pub mod znp_run;

use std::collections::HashMap;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::pty::{Pty, PtyError};
use crate::zcl::basic::BasicIdentity;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, warn};

pub use device::{SimDeviceConfig, SimDeviceSpec, UpgradeOutcome, UpgradeReport};
pub use faults::Faults;
pub use hostile::HostileSpec;
pub use ncp::{SimNcp, SimNcpConfig};
pub use radio::SimEvent;
pub use znp::{SimZnp, SimZnpConfig, ZnpNetwork};
pub use znp_run::run_znp_simulator;

use crate::zigbee::{Ieee, Nwk};
use device::SimDevice;

/// The device `--devices N` adds: manufacturer 0x1189 (LEDVANCE), image type 0x0001, version 1,
/// no hardware version, 50-byte blocks.
pub const DEFAULT_DEVICE: SimDeviceSpec = SimDeviceSpec {
    manufacturer_code: 0x1189,
    image_type: 0x0001,
    file_version: 0x0000_0001,
    hardware_version: None,
    max_data_size: SimDeviceSpec::DEFAULT_MAX_DATA_SIZE,
    identity: BasicIdentity {
        manufacturer_name: None,
        model_id: None,
        date_code: None,
        power_source: None,
        sw_build_id: None,
        vendor_file_version: None,
    },
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
    /// Every device also reports an attribute this often (`--report-every`; the EZSP proxy's
    /// proof that upstream still sees the device's own traffic).
    pub report_every: Option<Duration>,
    /// How long devices wait for an answer before asking again.
    pub response_timeout: Duration,
    /// Unanswered requests in a row after which a device gives up a download.
    pub max_retries: u32,
    /// Also report every message between the NCP and the host or devices
    /// ([`SimEvent::MessageToHost`], [`SimEvent::MessageToDevice`]).
    pub trace_messages: bool,
    /// Unplug the simulated stick once, and plug it in again.
    pub unplug: Option<Unplug>,
    /// Hostile devices, after the honest ones ([`hostile`]).
    pub hostile: Vec<HostileSpec>,
}

/// A USB stick unplugged and plugged in again: `after` the simulator started, the pty closes
/// (a host holding the port reads an error; the `link_path` symlink is removed) and the NCP
/// loses power ([`SimNcp::power_off`]); `gap` later a new pty pair appears, `link_path` points
/// to it, and the NCP boots with its stored network ([`SimNcp::power_on`]). The devices keep
/// their state throughout, so they resume their downloads. [`Simulator::path`] still names the
/// first pty: hosts that must follow the stick open `link_path`, as they would open a
/// `/dev/serial/by-id/` name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unplug {
    /// From the simulator's start to the unplug.
    pub after: Duration,
    /// How long the stick stays unplugged.
    pub gap: Duration,
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
            report_every: None,
            response_timeout: Duration::from_secs(5),
            max_retries: 10,
            trace_messages: false,
            unplug: None,
            hostile: Vec::new(),
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
    /// below the broadcast range) and IEEE `00:12:4b:00:00:00:xx:xx` with `xx:xx = i + 1`;
    /// the hostile devices come last, numbered on.
    pub fn device_configs(&self) -> Vec<SimDeviceConfig> {
        let hostile = self.hostile.iter().map(hostile_device_spec);
        let all: Vec<(SimDeviceSpec, Option<&HostileSpec>)> = self
            .devices
            .iter()
            .cloned()
            .map(|spec| (spec, None))
            .chain(hostile.zip(self.hostile.iter().map(Some)))
            .collect();
        all.into_iter()
            .enumerate()
            .map(|(index, (spec, hostile))| {
                let i = u16::try_from(index).unwrap_or(u16::MAX);
                let nwk = 0x1000u16.wrapping_add(i.wrapping_mul(0x101)) % 0xFFF0 + 1;
                let mut device = SimDeviceConfig::new(
                    Nwk(nwk),
                    Ieee(0x0012_4B00_0000_0000 | (u64::from(i) + 1)),
                    spec.clone(),
                );
                device.hostile = hostile.cloned();
                device.radio_delay = self.radio_delay;
                device.first_query_after = self.first_query_after;
                if let Some(poll) = self.sleepy_devices.get(&index) {
                    device.radio_delay += *poll;
                    device.first_query_after += *poll * 4;
                }
                device.query_interval = self.query_interval;
                device.report_every = self.report_every;
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

    /// The devices of [`SimConfig::device_configs`], started at `start`.
    pub fn sim_devices(&self, start: Instant) -> Vec<SimDevice> {
        self.device_configs()
            .into_iter()
            .map(|device| SimDevice::new(device, start))
            .collect()
    }
}

/// What a hostile device says it is: the squatter claims Bosch (its queries carry 0x1209 and
/// its Basic cluster says "BOSCH"), the pager claims the image it asks for, the spoofer
/// nothing (it answers no reads).
fn hostile_device_spec(hostile: &HostileSpec) -> SimDeviceSpec {
    let (manufacturer_code, manufacturer_name) = match hostile.kind {
        hostile::HostileKind::Squat => (hostile::CLAIMED_MANUFACTURER, Some("BOSCH".to_owned())),
        hostile::HostileKind::Pages => (hostile.manufacturer_code.unwrap_or_default(), None),
        hostile::HostileKind::Spoof => (0, None),
    };
    SimDeviceSpec {
        manufacturer_code,
        image_type: hostile.image_type,
        file_version: 0,
        hardware_version: None,
        max_data_size: SimDeviceSpec::DEFAULT_MAX_DATA_SIZE,
        identity: BasicIdentity {
            manufacturer_name,
            power_source: Some(0x01),
            ..BasicIdentity::default()
        },
    }
}

/// The simulator could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SimError {
    /// The pseudo-terminal (or its `--link` symlink) could not be made.
    #[error(transparent)]
    Pty(#[from] PtyError),
    /// The NCP configuration is invalid.
    #[error(transparent)]
    Ncp(#[from] ncp::SimNcpError),
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
    let ncp = config.ncp.clone();
    let version = ncp.ezsp_version;
    let span = |pty: &str| tracing::info_span!("sim", pty = %pty, ezsp_version = version);
    run_stick(config, span, move |devices| Ok(SimNcp::new(ncp, devices)?))
}

/// Creates the pty pair, puts the stick `build` makes with the devices of `config` on it, and
/// serves it on the current tokio runtime inside the tracing span `span` makes for the pty's
/// path.
fn run_stick<S: Stick + Send + 'static>(
    config: SimConfig,
    span: impl FnOnce(&str) -> tracing::Span,
    build: impl FnOnce(Vec<SimDevice>) -> Result<S, SimError>,
) -> Result<Simulator, SimError> {
    let port = Pty::open(config.link_path.as_deref())?;
    let path = port.path.clone();
    let start = now();
    let stick = build(config.sim_devices(start))?;
    let (event_tx, event_rx) = mpsc::channel(4096);
    let cancel = CancellationToken::new();
    let span = span(&path);
    let plug = Plug {
        port: Some(port),
        unplug: config
            .unplug
            .map(|unplug| (start + unplug.after, unplug.gap)),
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

fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

/// What [`serve`] drives on the pty: the simulated EZSP NCP or the simulated ZNP stick, each a
/// sans-IO core with the same verbs.
trait Stick {
    fn handle_input(&mut self, bytes: &[u8], now: Instant);
    fn handle_timeout(&mut self, now: Instant);
    fn poll_transmit(&mut self, now: Instant) -> Option<Vec<u8>>;
    fn poll_event(&mut self) -> Option<SimEvent>;
    fn poll_timeout(&self) -> Option<Instant>;
    fn power_off(&mut self);
    fn power_on(&mut self, now: Instant);
}

impl Stick for SimNcp {
    fn handle_input(&mut self, bytes: &[u8], now: Instant) {
        SimNcp::handle_input(self, bytes, now);
    }
    fn handle_timeout(&mut self, now: Instant) {
        SimNcp::handle_timeout(self, now);
    }
    fn poll_transmit(&mut self, now: Instant) -> Option<Vec<u8>> {
        SimNcp::poll_transmit(self, now)
    }
    fn poll_event(&mut self) -> Option<SimEvent> {
        SimNcp::poll_event(self)
    }
    fn poll_timeout(&self) -> Option<Instant> {
        SimNcp::poll_timeout(self)
    }
    fn power_off(&mut self) {
        SimNcp::power_off(self);
    }
    fn power_on(&mut self, now: Instant) {
        SimNcp::power_on(self, now);
    }
}

/// The port's presence: plugged in (a pty), or unplugged until a moment.
struct Plug {
    port: Option<Pty>,
    /// When to unplug, and for how long; taken when it happens.
    unplug: Option<(Instant, Duration)>,
    /// While unplugged: when the stick comes back.
    replug_at: Option<Instant>,
    link_path: Option<PathBuf>,
}

impl Plug {
    /// The next unplug or replug moment.
    fn next_change(&self) -> Option<Instant> {
        match self.port {
            Some(_) => self.unplug.map(|(at, _)| at),
            None => self.replug_at,
        }
    }

    /// Unplugs or plugs in, whichever is due. False if a new pty could not be made.
    fn change(&mut self, ncp: &mut impl Stick, now: Instant) -> bool {
        if let Some(port) = self.port.take() {
            let gap = self.unplug.take().map_or(Duration::ZERO, |(_, gap)| gap);
            ncp.power_off();
            if let Some(link) = &self.link_path {
                let _ = std::fs::remove_file(link);
            }
            warn!(
                "serial port unplugged (simulated): {} is gone for {gap:?}",
                port.path
            );
            self.replug_at = Some(now + gap);
            return true;
        }
        self.replug_at = None;
        match Pty::open(self.link_path.as_deref()) {
            Ok(port) => {
                warn!(
                    "serial port plugged in again (simulated) at {}; the stick is powered on",
                    port.path
                );
                self.port = Some(port);
                ncp.power_on(now);
                true
            }
            Err(e) => {
                warn!("cannot plug the simulated port in again: {e}");
                false
            }
        }
    }
}

/// Reads from the port, or waits forever while it is unplugged.
async fn read_port(port: &mut Option<Pty>, buffer: &mut [u8]) -> io::Result<usize> {
    match port {
        Some(port) => port.master.read(buffer).await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await,
        None => std::future::pending().await,
    }
}

/// Runs the simulated stick on the pty master, unplugging and plugging it in as `plug` says.
async fn serve(
    mut ncp: impl Stick,
    mut plug: Plug,
    events: mpsc::Sender<SimEvent>,
    cancel: CancellationToken,
    trace_messages: bool,
) {
    let mut buffer = [0u8; 512];
    loop {
        if let Some(port) = plug.port.as_mut() {
            while let Some(bytes) = ncp.poll_transmit(now()) {
                if let Err(e) = port.master.write_all(&bytes).await {
                    warn!("pty write failed: {e}");
                    return;
                }
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
        let change = plug.next_change();
        tokio::select! {
            biased;
            _ = cancel.cancelled() => return,
            _ = sleep_until(change) => {
                if !plug.change(&mut ncp, now()) {
                    return;
                }
            }
            read = read_port(&mut plug.port, &mut buffer) => match read {
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
            _ = sleep_until(deadline) => ncp.handle_timeout(now()),
        }
    }
}
