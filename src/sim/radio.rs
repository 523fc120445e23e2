//! What both simulated sticks, the EZSP NCP ([`super::ncp`]) and the ZNP ([`super::znp`]), do
//! the same way below their serial protocol, sans-IO: the simulated devices on the air and
//! their timers, what happens on the radio at which moment, the unicast transmit queue, the
//! announces when the network first comes up, the serial line's lost and damaged frames, the
//! unsolicited resets [`Faults`] asks for, and [`SimEvent`], what a stick reports. Each stick
//! keeps only how it frames all this for its host (EZSP callbacks over ASH, or MT frames).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::device::{DeviceEvent, SimDevice};
use super::faults::{Faults, SplitMix64};
use crate::zigbee::{CLUSTER_BASIC, CLUSTER_OTA_UPGRADE, Ieee, Nwk};

/// What a simulated stick reports.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SimEvent {
    /// A simulated device reported something (an upgrade's end, most importantly).
    Device {
        /// Which device.
        nwk: Nwk,
        /// What.
        event: DeviceEvent,
    },
    /// The host registered an endpoint.
    EndpointRegistered {
        /// The endpoint.
        endpoint: u8,
        /// Its input (server) clusters.
        input_clusters: Vec<u16>,
    },
    /// The stick rebooted: on the host's request, or by itself (an injected fault).
    Reset {
        /// True for an injected, unsolicited reset.
        unsolicited: bool,
    },
    /// The network came up.
    NetworkUp,
    /// The network went down (the host left it).
    NetworkDown,
    /// The host opened (or closed, with 0) the network for joining.
    PermitJoining {
        /// Seconds (0xFF: until closed).
        duration: u8,
    },
    /// A device message was handed to the host (queued on the serial link).
    MessageToHost {
        /// The sender.
        nwk: Nwk,
        /// Its cluster.
        cluster: u16,
        /// The APS payload.
        payload: Vec<u8>,
    },
    /// A unicast or broadcast from the host reached a device.
    MessageToDevice {
        /// The receiver.
        nwk: Nwk,
        /// The APS payload.
        payload: Vec<u8>,
    },
}

/// An APS frame between the stick and one device, either way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct DeviceFrame {
    /// The device.
    pub(super) nwk: Nwk,
    /// The device's endpoint: where the frame goes (0xFF: every endpoint), or where it comes
    /// from.
    pub(super) endpoint: u8,
    /// The cluster.
    pub(super) cluster: u16,
    /// The APS payload.
    pub(super) payload: Vec<u8>,
}

/// What a stick must do when its moment comes; `S` is what only that stick schedules.
#[derive(Debug, Clone)]
pub(super) enum Due<S> {
    /// A device's frame reaches the stick.
    FromDevice(DeviceFrame),
    /// A device's ZDO announce reaches the stick.
    Announce {
        /// The device.
        nwk: Nwk,
        /// Its IEEE address.
        ieee: Ieee,
    },
    /// Something of the stick's own (a delivery report, the network coming up, ...).
    Stick(S),
}

/// One entry of the schedule: the radio delivers frames to devices itself.
#[derive(Debug, Clone)]
enum OnAir<S> {
    ToDevice(DeviceFrame),
    Due(Due<S>),
}

/// What became of a unicast put on the air ([`Radio::send_unicast`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct UnicastFate {
    /// The one-way radio delay to the device; `None`: no device has the address.
    pub(super) radio_delay: Option<Duration>,
    /// Whether it reaches the device.
    pub(super) delivered: bool,
    /// Whether its delivery report comes; when it does not, the transmit queue slot is free
    /// again already (the stick frees it after its retries).
    pub(super) reported: bool,
}

/// The simulated devices and what is on the air between them and a stick.
#[derive(Debug)]
pub(super) struct Radio<S> {
    devices: Vec<SimDevice>,
    /// What happens when; due entries fire earliest first.
    schedule: Vec<(Instant, OnAir<S>)>,
    /// Unicasts accepted and not yet reported (capped by [`Faults::transmit_queue`]).
    pending_unicasts: usize,
    /// Whether the devices announced themselves (once, when the network first came up).
    announced: bool,
}

impl<S> Radio<S> {
    /// `devices` on the air, nothing scheduled.
    pub(super) fn new(devices: Vec<SimDevice>) -> Self {
        Radio {
            devices,
            schedule: Vec::new(),
            pending_unicasts: 0,
            announced: false,
        }
    }

    /// The simulated devices.
    pub(super) fn devices(&self) -> &[SimDevice] {
        &self.devices
    }

    /// The device with this address.
    pub(super) fn device(&self, nwk: Nwk) -> Option<&SimDevice> {
        self.devices.iter().find(|d| d.config().nwk == nwk)
    }

    /// Schedules something of the stick's own.
    pub(super) fn schedule(&mut self, at: Instant, item: S) {
        self.schedule.push((at, OnAir::Due(Due::Stick(item))));
    }

    /// When [`Radio::pop_due`] or [`Radio::run_device_timers`] has work next.
    pub(super) fn poll_timeout(&self) -> Option<Instant> {
        let scheduled = self.schedule.iter().map(|(at, _)| *at).min();
        let devices = self
            .devices
            .iter()
            .filter_map(SimDevice::poll_timeout)
            .min();
        scheduled.into_iter().chain(devices).min()
    }

    /// The earliest entry due at `now` for the stick to handle; frames due to reach a device
    /// are delivered on the way (their [`SimEvent`]s go to `events`).
    pub(super) fn pop_due(
        &mut self,
        now: Instant,
        events: &mut VecDeque<SimEvent>,
    ) -> Option<Due<S>> {
        loop {
            let index = self
                .schedule
                .iter()
                .enumerate()
                .filter(|(_, (at, _))| *at <= now)
                .min_by_key(|(_, (at, _))| *at)
                .map(|(index, _)| index)?;
            match self.schedule.swap_remove(index).1 {
                OnAir::ToDevice(frame) => self.deliver_to_device(frame, now, events),
                OnAir::Due(due) => return Some(due),
            }
        }
    }

    /// Fires the devices' due timers and puts what they send on the air.
    pub(super) fn run_device_timers(&mut self, now: Instant, events: &mut VecDeque<SimEvent>) {
        for index in 0..self.devices.len() {
            if let Some(device) = self.devices.get_mut(index)
                && device.poll_timeout().is_some_and(|at| at <= now)
            {
                device.handle_timeout(now);
            }
            self.collect_device_output(index, now, events);
        }
    }

    /// The stick rebooted or lost power: it forgets what it was sending and reporting, but
    /// what is already on the air to a device still arrives.
    pub(super) fn forget_all_but_the_air(&mut self) {
        self.schedule
            .retain(|(_, item)| matches!(item, OnAir::ToDevice(_)));
        self.pending_unicasts = 0;
    }

    /// Whether the transmit queue ([`Faults::transmit_queue`]) is full.
    pub(super) fn transmit_queue_full(&self, faults: &Faults) -> bool {
        self.pending_unicasts >= faults.transmit_queue
    }

    /// A unicast takes a transmit queue slot until [`Radio::unicast_reported`].
    pub(super) fn hold_unicast(&mut self) {
        self.pending_unicasts += 1;
    }

    /// A unicast's delivery report went out: its slot is free.
    pub(super) fn unicast_reported(&mut self) {
        self.pending_unicasts = self.pending_unicasts.saturating_sub(1);
    }

    /// Puts a unicast on the air in a transmit queue slot: it reaches its device after the
    /// radio delay unless no device has the address or [`Faults::delivery_failure`] strikes;
    /// its delivery report is lost by [`Faults::lost_delivery_report`]. The stick schedules
    /// the report.
    pub(super) fn send_unicast(
        &mut self,
        frame: DeviceFrame,
        now: Instant,
        faults: &Faults,
        rng: &mut SplitMix64,
    ) -> UnicastFate {
        self.hold_unicast();
        let radio_delay = self.device(frame.nwk).map(|d| d.config().radio_delay);
        let delivered = radio_delay.is_some() && !rng.chance(faults.delivery_failure);
        if let Some(delay) = radio_delay.filter(|_| delivered) {
            self.schedule.push((now + delay, OnAir::ToDevice(frame)));
        }
        let reported = !rng.chance(faults.lost_delivery_report);
        if !reported {
            self.unicast_reported();
        }
        UnicastFate {
            radio_delay,
            delivered,
            reported,
        }
    }

    /// A broadcast leaves the stick at `leaves`: every device hears it after its radio delay.
    pub(super) fn send_broadcast(
        &mut self,
        leaves: Instant,
        endpoint: u8,
        cluster: u16,
        payload: &[u8],
    ) {
        let frames = self.devices.iter().map(|d| {
            let frame = DeviceFrame {
                nwk: d.config().nwk,
                endpoint,
                cluster,
                payload: payload.to_vec(),
            };
            (leaves + d.config().radio_delay, OnAir::ToDevice(frame))
        });
        self.schedule.extend(frames);
    }

    /// The network is up: the first time, every device announces itself (ZDO Device_annce),
    /// heard after its radio delay.
    pub(super) fn announce_once(&mut self, now: Instant) {
        if self.announced {
            return;
        }
        self.announced = true;
        let announces = self.devices.iter().map(|d| {
            let config = d.config();
            let announce = Due::Announce {
                nwk: config.nwk,
                ieee: config.ieee,
            };
            (now + config.radio_delay, OnAir::Due(announce))
        });
        self.schedule.extend(announces);
    }

    /// A frame reaches its device, which takes it if it is addressed to its endpoint (or to
    /// all) and is an OTA or Basic cluster frame; then what the device answers goes on the air.
    fn deliver_to_device(
        &mut self,
        frame: DeviceFrame,
        now: Instant,
        events: &mut VecDeque<SimEvent>,
    ) {
        let DeviceFrame {
            nwk,
            endpoint,
            cluster,
            payload,
        } = frame;
        let Some(index) = self.devices.iter().position(|d| d.config().nwk == nwk) else {
            return;
        };
        events.push_back(SimEvent::MessageToDevice {
            nwk,
            payload: payload.clone(),
        });
        if let Some(device) = self.devices.get_mut(index) {
            let addressed = endpoint == device.config().endpoint || endpoint == 0xFF;
            if addressed && cluster == CLUSTER_OTA_UPGRADE {
                device.handle_frame(&payload, now);
            } else if addressed && cluster == CLUSTER_BASIC {
                device.handle_basic_frame(&payload, now);
            }
        }
        self.collect_device_output(index, now, events);
    }

    /// Puts what a device wants to send (OTA frames and Basic cluster answers) on the air, and
    /// its events in `events`.
    fn collect_device_output(
        &mut self,
        index: usize,
        now: Instant,
        events: &mut VecDeque<SimEvent>,
    ) {
        let Some(device) = self.devices.get_mut(index) else {
            return;
        };
        // Read after its timers ran: a spoofing device changes its address.
        let nwk = device.config().nwk;
        let endpoint = device.config().endpoint;
        let delay = device.config().radio_delay;
        while let Some((cluster, payload)) = device.poll_radio_frame() {
            let frame = DeviceFrame {
                nwk,
                endpoint,
                cluster,
                payload,
            };
            self.schedule
                .push((now + delay, OnAir::Due(Due::FromDevice(frame))));
        }
        while let Some(event) = device.poll_event() {
            events.push_back(SimEvent::Device { nwk, event });
        }
    }
}

/// Where a device's frame goes up to the host: the first endpoint the host registered
/// (`registered`: each with its input clusters) that serves the OTA cluster, as both stacks
/// match a frame to an endpoint by endpoint and profile, not by cluster. `None`: the stack
/// drops the frame.
pub(super) fn ota_endpoint<'a>(registered: impl Iterator<Item = (u8, &'a [u16])>) -> Option<u8> {
    registered
        .filter(|(_, input_clusters)| input_clusters.contains(&CLUSTER_OTA_UPGRADE))
        .map(|(endpoint, _)| endpoint)
        .next()
}

/// Which bytes of a serial frame a damaged frame has one bit flipped in: all but its framing
/// (ASH's closing flag, MT's start-of-frame byte), so the receiver still sees a frame and
/// rejects it by its check.
#[derive(Debug, Clone, Copy)]
pub(super) struct Framing {
    /// Bytes at the start left whole.
    pub(super) head: usize,
    /// Bytes at the end left whole.
    pub(super) tail: usize,
}

/// A frame through the faulty serial line: lost with probability `loss` (`None`), or damaged
/// with probability `damage` (one random bit flipped outside the `framing`).
pub(super) fn through_line(
    rng: &mut SplitMix64,
    (loss, damage): (f64, f64),
    mut frame: Vec<u8>,
    framing: Framing,
) -> Option<Vec<u8>> {
    if rng.chance(loss) {
        return None;
    }
    if rng.chance(damage) {
        let end = frame.len().saturating_sub(framing.tail);
        if let Some(body) = frame.get_mut(framing.head..end) {
            rng.flip_bit(body);
        }
    }
    Some(frame)
}

/// The unsolicited resets [`Faults`] asks for: once after handing the host
/// [`Faults::reset_after_messages`] device messages, and every [`Faults::reset_every`] after
/// the last reset.
#[derive(Debug, Default)]
pub(super) struct SelfResets {
    messages_to_host: u64,
    threshold_passed: bool,
    /// When the stick last rebooted (the host's request, an injected reset, a power-on);
    /// `None` until the host first connects.
    last_reset: Option<Instant>,
}

impl SelfResets {
    /// The stick rebooted.
    pub(super) fn rebooted(&mut self, now: Instant) {
        self.last_reset = Some(now);
    }

    /// A device's frame goes to the host: counted, and reported in `events`; returns how
    /// many did so far.
    pub(super) fn message_to_host(
        &mut self,
        frame: &DeviceFrame,
        events: &mut VecDeque<SimEvent>,
    ) -> u64 {
        self.messages_to_host += 1;
        events.push_back(SimEvent::MessageToHost {
            nwk: frame.nwk,
            cluster: frame.cluster,
            payload: frame.payload.clone(),
        });
        self.messages_to_host
    }

    /// When the next periodic reset is due (none while unpowered or before the first reboot).
    pub(super) fn periodic_due(&self, faults: &Faults, powered: bool) -> Option<Instant> {
        let period = faults.reset_every?;
        self.last_reset
            .filter(|_| powered)
            .map(|last| last + period)
    }

    /// How many resets are due at `now` for a powered stick whose line is quiet: the message
    /// threshold's, then the period's counted from it (the stick performs each, in order).
    pub(super) fn due_now(&mut self, faults: &Faults, now: Instant) -> usize {
        let mut due = 0;
        if let Some(threshold) = faults.reset_after_messages
            && !self.threshold_passed
            && self.messages_to_host >= threshold
        {
            self.threshold_passed = true;
            self.rebooted(now);
            due += 1;
        }
        if self.periodic_due(faults, true).is_some_and(|at| at <= now) {
            due += 1;
        }
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn through_line_damages_only_inside_the_framing() {
        let mut rng = SplitMix64::new(3);
        let framing = Framing { head: 1, tail: 1 };
        for _ in 0..200 {
            let frame = through_line(&mut rng, (0.0, 1.0), vec![0xFE, 0, 0, 0x7E], framing)
                .expect("no loss asked for");
            assert_eq!((frame[0], frame[3]), (0xFE, 0x7E));
            assert_eq!(frame[1].count_ones() + frame[2].count_ones(), 1);
        }
        assert_eq!(through_line(&mut rng, (1.0, 0.0), vec![1], framing), None);
        assert_eq!(
            through_line(&mut rng, (0.0, 0.0), vec![1, 2], framing),
            Some(vec![1, 2])
        );
    }

    #[test]
    fn self_resets_after_the_threshold_once_and_then_by_the_period() {
        #[allow(clippy::disallowed_methods)] // An arbitrary origin for the virtual clock.
        let start = Instant::now();
        let period = Duration::from_secs(10);
        let faults = Faults {
            reset_after_messages: Some(2),
            reset_every: Some(period),
            ..Faults::default()
        };
        let mut resets = SelfResets::default();
        assert_eq!(resets.periodic_due(&faults, true), None, "no host yet");
        resets.rebooted(start);
        assert_eq!(resets.periodic_due(&faults, false), None, "unpowered");
        assert_eq!(resets.periodic_due(&faults, true), Some(start + period));
        let frame = DeviceFrame {
            nwk: Nwk(0x1234),
            endpoint: 1,
            cluster: CLUSTER_OTA_UPGRADE,
            payload: vec![1],
        };
        let mut events = VecDeque::new();
        resets.message_to_host(&frame, &mut events);
        assert_eq!(resets.due_now(&faults, start), 0);
        assert_eq!(resets.message_to_host(&frame, &mut events), 2);
        assert_eq!(events.len(), 2);
        let later = start + Duration::from_secs(3);
        assert_eq!(resets.due_now(&faults, later), 1);
        assert_eq!(
            resets.due_now(&faults, later),
            0,
            "the threshold fires once"
        );
        assert_eq!(resets.periodic_due(&faults, true), Some(later + period));
        assert_eq!(resets.due_now(&faults, later + period), 1);
    }
}
