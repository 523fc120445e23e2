//! Fuzz entry points for the `znp` module.

use crate::znp::command::Message;
use crate::znp::frame::{Decoder, Frame};

/// Arbitrary bytes as a ZNP serial stream, fed in two pieces split where the first byte says.
///
/// Invariants: nothing panics; the decoder consumes everything it is given (it never holds more
/// than one incomplete frame's worth); every frame it yields re-encodes to a frame that decodes
/// to itself; a frame whose DATA decodes to a [`Message`] re-encodes to exactly the same DATA.
pub fn decode_stream(data: &[u8]) {
    let Some((&split, stream)) = data.split_first() else {
        return;
    };
    let cut = usize::from(split).min(stream.len());
    let (first, second) = stream.split_at(cut);
    let mut decoder = Decoder::default();
    let mut frames = Vec::new();
    for piece in [first, second] {
        decoder.push(piece);
        while let Some(item) = decoder.next_frame() {
            if let Ok(frame) = item {
                frames.push(frame);
            }
        }
    }
    assert!(
        decoder.buffered() < crate::znp::frame::MAX_PAYLOAD + crate::znp::frame::OVERHEAD,
        "the decoder holds {} bytes",
        decoder.buffered()
    );
    for frame in frames {
        let bytes = frame.to_bytes();
        assert_eq!(Frame::decode(&bytes).as_ref(), Ok(&frame));
        if let Ok(message) = Message::decode(&frame) {
            assert_eq!(
                message.payload(),
                frame.payload,
                "decode/encode changed {message:?}"
            );
        }
    }
}

/// The sans-IO ZNP host ([`crate::znp::host::Host`]) paired with the simulated Z-Stack stick
/// ([`crate::sim::SimZnp`]) and driven by operations decoded from `data`: the bytes between
/// them delivered, lost or damaged; arbitrary bytes and well-formed MT frames of any command
/// injected into the host; the virtual clock moved; unicasts, broadcasts and permit-joins
/// sent; the stick reset or unplugged; the port closed and start-up begun again, as the
/// driver does. The well-behaved stick gets the host up, so the fuzzer reaches the request,
/// confirm and lookup logic, not only start-up.
///
/// Invariants: nothing panics; no timer points into the past after `handle_timeout`; every
/// send the host accepted is reported exactly once (a [`HostEvent::Delivery`] with its tag,
/// never one for a tag it did not accept); and at the end, with the stick silent, every send
/// still in flight is reported within bounded virtual time: no in-flight request is forgotten.
///
/// [`HostEvent::Delivery`]: crate::znp::host::HostEvent::Delivery
pub fn drive_host(data: &[u8]) {
    use std::collections::HashSet;
    use std::time::{Duration, Instant};

    use crate::coordinator::network::{NetworkOverrides, NetworkSettings};
    use crate::coordinator::{
        BroadcastMessage, CLUSTER_OTA_UPGRADE, DeviceTable, MessageTag, Nwk, UnicastMessage,
    };
    use crate::sim::device::SimDevice;
    use crate::sim::{SimConfig, SimZnp, SimZnpConfig};
    use crate::wire::Reader;
    use crate::znp::frame::{FrameType, Subsystem};
    use crate::znp::host::{Host, HostConfig, HostEvent};

    #[allow(clippy::disallowed_methods)] // Only offsets from this origin matter.
    let mut now = Instant::now();
    let mut input = Reader::new(data);
    let settings = NetworkSettings::resolve(
        &NetworkOverrides {
            channel: Some(15),
            pan_id: Some(0x1A62),
            extended_pan_id: Some(0xDDDD_DDDD_DDDD_DDDD),
            network_key: Some([0x5A; 16]),
        },
        None,
        &[0; 32],
    );
    let mut sim_config = SimConfig::default();
    sim_config.add_default_devices(2);
    sim_config.first_query_after = Duration::from_secs(5);
    let devices = sim_config
        .device_configs()
        .into_iter()
        .map(|d| SimDevice::new(d, now))
        .collect();
    let mut sim = SimZnp::new(SimZnpConfig::default(), devices);
    let mut host = Host::new(HostConfig::new(1, settings), DeviceTable::default(), now);
    host.start(now);

    let mut accepted: HashSet<u32> = HashSet::new();
    let mut next_tag = 1u32;
    let mut down = false;
    let drain = |host: &mut Host, accepted: &mut HashSet<u32>, down: &mut bool| {
        while let Some(event) = host.poll_event() {
            match event {
                HostEvent::Delivery { tag, .. } => assert!(
                    accepted.remove(&tag.0),
                    "a report for tag {} that is not in flight (never accepted, or reported twice)",
                    tag.0
                ),
                HostEvent::Lost(_) => *down = true,
                _ => {}
            }
        }
    };

    while let Ok(op) = input.u8("op") {
        match op % 12 {
            // The line, both ways, as it is.
            0 => {
                while let Some(bytes) = host.poll_transmit() {
                    sim.handle_input(&bytes, now);
                }
            }
            1 => {
                while let Some(bytes) = sim.poll_transmit() {
                    host.handle_input(&bytes, now);
                }
            }
            // The stick's next write damaged (one byte flipped) or lost.
            2 => {
                if let Some(mut bytes) = sim.poll_transmit() {
                    let at = usize::from(input.u8("at").unwrap_or(0));
                    let flip = input.u8("flip").unwrap_or(0);
                    if flip != 0 && !bytes.is_empty() {
                        let index = at % bytes.len();
                        if let Some(byte) = bytes.get_mut(index) {
                            *byte ^= flip;
                        }
                        host.handle_input(&bytes, now);
                    }
                }
            }
            // Arbitrary bytes on the line.
            3 => {
                let len = usize::from(input.u8("len").unwrap_or(0));
                let bytes = input.take("bytes", len).unwrap_or_else(|_| input.rest());
                host.handle_input(bytes, now);
            }
            // A well-formed MT frame of any type, subsystem and id, with arbitrary data.
            4 => {
                let cmd0 = input.u8("cmd0").unwrap_or(0);
                let cmd1 = input.u8("cmd1").unwrap_or(0);
                let len = usize::from(input.u8("len").unwrap_or(0)) % 64;
                let payload = input
                    .take("payload", len)
                    .unwrap_or_else(|_| input.rest())
                    .to_vec();
                let frame = Frame {
                    frame_type: FrameType::from_bits(cmd0 >> 5),
                    subsystem: Subsystem(cmd0 & 0x1F),
                    id: cmd1,
                    payload,
                };
                host.handle_input(&frame.to_bytes(), now);
            }
            // The clock.
            5 => {
                now += Duration::from_millis(u64::from(input.u16("millis").unwrap_or(0)));
                host.handle_timeout(now);
                sim.handle_timeout(now);
                if let Some(next) = host.poll_timeout() {
                    assert!(next > now, "a timer in the past after handle_timeout");
                }
            }
            6 => {
                let next = [host.poll_timeout(), sim.poll_timeout()]
                    .into_iter()
                    .flatten()
                    .min();
                if let Some(at) = next {
                    now = now.max(at);
                    host.handle_timeout(now);
                    sim.handle_timeout(now);
                }
            }
            // Sends, as the OTA server makes them.
            7 | 8 => {
                let tag = MessageTag(next_tag);
                next_tag += 1;
                let len = usize::from(input.u8("len").unwrap_or(0)) % 100;
                let destination = Nwk(input.u16("nwk").unwrap_or(0x1001));
                let result = if op % 12 == 7 {
                    let message = UnicastMessage {
                        destination,
                        src_endpoint: 1,
                        dst_endpoint: 1,
                        profile: 0x0104,
                        cluster: CLUSTER_OTA_UPGRADE,
                        payload: vec![0x19; len],
                        aps_ack: len % 2 == 0,
                    };
                    host.send_unicast(tag, &message, now)
                } else {
                    let message = BroadcastMessage {
                        destination: Nwk::BROADCAST_RX_ON_WHEN_IDLE,
                        src_endpoint: 1,
                        dst_endpoint: 0xFF,
                        profile: 0x0104,
                        cluster: CLUSTER_OTA_UPGRADE,
                        payload: vec![0x19; len],
                        radius: 0,
                    };
                    host.send_broadcast(tag, &message, now)
                };
                if result.is_ok() {
                    accepted.insert(tag.0);
                }
            }
            9 => {
                let _ = host.permit_joining(input.u8("seconds").unwrap_or(0), now);
            }
            // The stick misbehaves: resets by itself, or loses power and comes back.
            10 => {
                if input.u8("kind").unwrap_or(0).is_multiple_of(2) {
                    sim.reset(now);
                } else {
                    sim.power_off();
                    sim.power_on(now);
                }
            }
            // The port goes and comes back; start-up again, as the driver does after a loss.
            _ => {
                host.close(now);
                drain(&mut host, &mut accepted, &mut down);
                host.start(now);
                down = false;
            }
        }
        drain(&mut host, &mut accepted, &mut down);
        if down {
            assert!(
                accepted.is_empty(),
                "the host went down with sends unreported: {accepted:?}"
            );
            if input.u8("restart").unwrap_or(0).is_multiple_of(4) {
                host.start(now);
                down = false;
            }
        }
    }

    // The stick falls silent: within bounded virtual time every send in flight is reported
    // (by its confirm timeout, its unanswered request, or the loss of the stick).
    for _ in 0..10_000 {
        if accepted.is_empty() {
            break;
        }
        while host.poll_transmit().is_some() {}
        let Some(at) = host.poll_timeout() else {
            break;
        };
        now = now.max(at);
        host.handle_timeout(now);
        if let Some(next) = host.poll_timeout() {
            assert!(next > now, "a timer in the past after handle_timeout");
        }
        drain(&mut host, &mut accepted, &mut down);
    }
    assert!(
        accepted.is_empty(),
        "sends never reported once the stick fell silent: {accepted:?}"
    );
}
