//! Test rigs on a virtual clock (STYLE.md, "Testing serial code without hardware"): the sans-IO
//! EZSP host and the proxy's relay are wired to simulated sticks and devices, every core is
//! stepped until nothing moves, then the clock jumps to the next deadline. The rigs differ in
//! what they wire; how they run is written once here.

use std::time::{Duration, Instant};

use std::sync::Arc;

use bytes::Bytes;

use super::{Ieee, MessageTag, Nwk, UnicastMessage};
use crate::ota::{FileVersion, ImageType, ManufacturerCode, OtaHeader};
use crate::server::{Destination, ImageKey, OtaImage, OtaServer, Outgoing, ServerConfig};
use crate::sim::SimDeviceSpec;
use crate::sim::SimEvent;
use crate::sim::device::SimDeviceConfig;
use crate::sim::device::{DeviceEvent, UpgradeReport};

/// Keeps the report of an upgrade that ended in `upgrades`; gives back any other event.
pub(crate) fn keep_upgrade_report(
    upgrades: &mut Vec<UpgradeReport>,
    event: SimEvent,
) -> Option<SimEvent> {
    match event {
        SimEvent::Device {
            event: DeviceEvent::UpgradeEnded(report),
            ..
        } => {
            upgrades.push(report);
            None
        }
        other => Some(other),
    }
}

/// The image the rigs' OTA server offers.
pub(crate) const TEST_IMAGE: ImageKey = ImageKey {
    manufacturer_code: 0x1189,
    image_type: 0x0001,
    file_version: 2,
};
/// The rigs' one device.
pub(crate) const DEVICE_NWK: Nwk = Nwk(0x2345);
/// Its IEEE address.
pub(crate) const DEVICE_IEEE: Ieee = Ieee(0x0012_4B00_0000_0001);

/// An arbitrary origin for the virtual clock.
#[allow(clippy::disallowed_methods)]
pub(crate) fn origin() -> Instant {
    Instant::now()
}

/// A minimal valid OTA file of `total` bytes for [`TEST_IMAGE`] (the project's own header
/// encoder).
pub(crate) fn ota_file(total: usize) -> Vec<u8> {
    let mut header = OtaHeader::new(
        ManufacturerCode(TEST_IMAGE.manufacturer_code),
        ImageType(TEST_IMAGE.image_type),
        FileVersion(TEST_IMAGE.file_version),
    );
    header.header_string = [b'x'; 32];
    header.image_size = u32::try_from(total).unwrap_or(u32::MAX);
    let mut file = Vec::new();
    header.encode(&mut file);
    file.extend((0..total.saturating_sub(file.len())).map(|i| (i * 7 + 3) as u8));
    file
}

/// An OTA server offering [`TEST_IMAGE`] as an [`ota_file`] of `total` bytes.
pub(crate) fn server_offering(total: usize, now: Instant) -> OtaServer {
    let image = OtaImage::new(TEST_IMAGE, Bytes::from(ota_file(total)))
        .unwrap()
        .shared();
    let mut server = OtaServer::new(ServerConfig::default());
    server.set_images(vec![image], now);
    server
}

/// The rigs' device, on version 1 of [`TEST_IMAGE`]'s type; with `expected` it checks that
/// the image it gets is the [`ota_file`] of that many bytes.
pub(crate) fn device_config(expected: Option<usize>) -> SimDeviceConfig {
    let spec: SimDeviceSpec = format!(
        "{:#06x}:{:#06x}:1",
        TEST_IMAGE.manufacturer_code, TEST_IMAGE.image_type
    )
    .parse()
    .unwrap();
    let mut config = SimDeviceConfig::new(DEVICE_NWK, DEVICE_IEEE, spec);
    config.expected_image = expected.map(|total| Arc::new(ota_file(total)));
    config
}

/// An OTA server's send as a rig hands it to the core under test: a unicast numbered from
/// `next_tag` (which moves on); `None` for a broadcast, which the rigs drop.
pub(crate) fn numbered_unicast(
    outgoing: &Outgoing,
    next_tag: &mut u32,
) -> Option<(MessageTag, UnicastMessage)> {
    let Destination::Unicast(device) = outgoing.destination else {
        return None;
    };
    let tag = MessageTag(*next_tag);
    *next_tag += 1;
    let message = UnicastMessage::ota(
        Nwk(device.nwk),
        outgoing.source_endpoint,
        outgoing.destination_endpoint,
        outgoing.zcl_bytes.to_vec(),
    );
    Some((tag, message))
}

/// A set of sans-IO cores wired together and driven by one virtual clock.
pub(crate) trait VirtualRig: Sized {
    /// Moves everything that can move at the rig's time; true when something did.
    fn step(&mut self) -> bool;

    /// Every core's next deadline.
    fn deadlines(&self) -> Vec<Option<Instant>>;

    /// Fires every core's timeouts due at `now`.
    fn handle_timeouts(&mut self, now: Instant);

    /// The virtual time.
    fn clock(&mut self) -> &mut Instant;

    /// Advances the clock to the earliest deadline, at most to `limit`, and fires it; false
    /// when no deadline comes before `limit` (the clock is then at `limit`).
    fn advance(&mut self, limit: Instant) -> bool {
        let next = self.deadlines().into_iter().flatten().min();
        let clock = self.clock();
        let Some(at) = next.filter(|at| *at <= limit) else {
            *clock = (*clock).max(limit);
            return false;
        };
        *clock = (*clock).max(at);
        let now = *clock;
        self.handle_timeouts(now);
        true
    }

    /// Runs until `done` or `within` of virtual time has passed; true when done.
    fn run_until(&mut self, within: Duration, mut done: impl FnMut(&Self) -> bool) -> bool {
        let limit = *self.clock() + within;
        let mut steps = 0u32;
        loop {
            while self.step() {
                steps += 1;
                assert!(steps < 5_000_000, "livelock");
            }
            if done(self) {
                return true;
            }
            if !self.advance(limit) {
                return done(self);
            }
        }
    }

    /// Runs for `duration` of virtual time.
    fn run_for(&mut self, duration: Duration) {
        self.run_until(duration, |_| false);
    }
}
