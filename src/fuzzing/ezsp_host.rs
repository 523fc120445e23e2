//! Fuzz entry point for the sans-IO EZSP host ([`crate::coordinator::ezsp::EzspHost`]): the host
//! wired to a simulated NCP, with the fuzzer choosing what crosses the line (the NCP's bytes,
//! arbitrary bytes, dropped writes), when time jumps, when the NCP resets or the port vanishes,
//! and what the host is asked to send.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::coordinator::ezsp::{EzspHost, HostConfig, HostEvent};
use crate::coordinator::network::NetworkSettings;
use crate::coordinator::serial::Backoff;
use crate::coordinator::{DeviceTable, MessageTag, Nwk, UnicastMessage};
use crate::ezsp::command::Command;
use crate::ezsp::frame::FrameId;
use crate::sim::{SimNcp, SimNcpConfig};
use crate::wire::Reader;

/// The first byte picks the EZSP version and whether the stick holds a network; the rest is a
/// list of operations. Invariants: nothing panics; a delivery report names only a tag handed to
/// the host, and no tag is reported twice; every tag still unreported is in
/// [`EzspHost::in_flight_tags`] or was refused before going out; after [`EzspHost::stop`] every
/// tag has exactly one report (no in-flight send is forgotten).
pub fn fuzz_host(data: &[u8]) {
    run(data);
}

/// What one run reached: whether the host came up, and how many tags it was handed.
fn run(data: &[u8]) -> (bool, usize) {
    let mut reached_up = false;
    let mut input = Reader::new(data);
    let Ok(selector) = input.u8("selector") else {
        return (false, 0);
    };
    #[allow(clippy::disallowed_methods)] // Only offsets from this origin matter.
    let mut now = Instant::now();
    let mut config = SimNcpConfig {
        ezsp_version: 8 + selector % 10,
        ..SimNcpConfig::default()
    };
    if selector & 0x80 != 0 {
        config = config.holding_network();
    }
    let Ok(mut ncp) = SimNcp::new(config, Vec::new()) else {
        return (false, 0);
    };
    let host_config = HostConfig {
        backoff: Backoff::new(Duration::from_millis(10), Duration::from_millis(80)),
        ..HostConfig::new(1)
    };
    let Ok(mut host) = EzspHost::new(host_config, DeviceTable::default(), now) else {
        return (false, 0);
    };
    let mut reports: BTreeMap<MessageTag, u32> = BTreeMap::new();
    let mut next_tag = 1u32;
    let mut port_open = false;

    while let Ok(op) = input.u8("op") {
        match op % 10 {
            // The NCP's bytes cross the line (or are dropped).
            0 | 1 => {
                while let Some(bytes) = ncp.poll_transmit(now) {
                    if port_open && op % 2 == 0 {
                        host.handle_input(&bytes, now);
                    }
                }
            }
            // The host's bytes cross the line.
            2 => {
                while let Some(bytes) = host.poll_transmit(now) {
                    if port_open {
                        ncp.handle_input(&bytes, now);
                    }
                }
            }
            // Arbitrary bytes from the port.
            3 => {
                let len = usize::from(input.u8("len").unwrap_or(0) % 64);
                let bytes = input.take("bytes", len).unwrap_or_default();
                host.handle_input(bytes, now);
            }
            // Time passes.
            4 => {
                let ms = u64::from(input.u16("ms").unwrap_or(0));
                now += Duration::from_millis(ms);
                host.handle_timeout(now);
                ncp.handle_timeout(now);
            }
            // The next deadline.
            5 => {
                if let Some(at) = [host.poll_timeout(), ncp.poll_timeout()]
                    .into_iter()
                    .flatten()
                    .min()
                {
                    now = now.max(at);
                }
                host.handle_timeout(now);
                ncp.handle_timeout(now);
            }
            // A unicast to the device table's first device or an arbitrary address.
            6 => {
                let destination = Nwk(input.u16("nwk").unwrap_or(0x1234));
                let tag = MessageTag(next_tag);
                next_tag += 1;
                reports.insert(tag, 0);
                host.send_unicast(
                    tag,
                    UnicastMessage {
                        destination,
                        src_endpoint: 1,
                        dst_endpoint: 1,
                        profile: 0x0104,
                        cluster: 0x0019,
                        payload: vec![0x19, 0x01, 0x02],
                        aps_ack: true,
                    },
                    None,
                    now,
                );
            }
            // The NCP resets by itself, or the port vanishes.
            7 => {
                if input.u8("which").unwrap_or(0) & 1 == 0 {
                    ncp.reset(now);
                } else {
                    port_open = false;
                    ncp.power_off();
                    host.port_lost("fuzz", now);
                    ncp.power_on(now);
                }
            }
            // A raw command from outside (the proxy's path).
            8 => {
                let frame_id = FrameId(input.u16("frame_id").unwrap_or(0));
                let len = usize::from(input.u8("len").unwrap_or(0) % 16);
                let parameters = input.take("parameters", len).unwrap_or_default().to_vec();
                let _ = host.submit(
                    &Command::Other {
                        frame_id,
                        parameters,
                    },
                    now,
                );
            }
            _ => {}
        }
        reached_up |= host.state() == crate::coordinator::CoordinatorState::Up;
        while let Some(event) = host.poll_event() {
            match event {
                HostEvent::OpenPort => {
                    port_open = true;
                    host.port_opened(now);
                }
                HostEvent::NetworkSettingsNeeded => {
                    let settings = NetworkSettings::resolve(&Default::default(), None, &[5; 32]);
                    host.network_settings(Ok(settings), now);
                }
                HostEvent::Delivery { tag, .. } => {
                    let count = reports.get_mut(&tag);
                    assert!(count.is_some(), "a report for {tag:?}, never handed over");
                    let Some(count) = count else { continue };
                    *count += 1;
                    assert_eq!(*count, 1, "{tag:?} reported twice");
                }
                _ => {}
            }
        }
        let in_flight = host.in_flight_tags();
        for (tag, count) in &reports {
            assert!(
                *count == 1 || in_flight.contains(tag),
                "{tag:?} is neither reported nor in flight"
            );
        }
    }
    host.stop(now);
    while let Some(event) = host.poll_event() {
        if let HostEvent::Delivery { tag, .. } = event
            && let Some(count) = reports.get_mut(&tag)
        {
            *count += 1;
        }
    }
    assert!(
        reports.values().all(|count| *count == 1),
        "a send was forgotten or reported twice: {reports:?}"
    );
    (reached_up, reports.len())
}

#[cfg(test)]
mod tests {
    /// A few fixed inputs: start-up, sends, a reset and a lost port all run through.
    #[test]
    fn fixed_inputs_keep_the_invariants() {
        let mut script = vec![0x85u8];
        for _ in 0..60 {
            script.extend_from_slice(&[2, 0, 2, 0, 5]);
        }
        script.extend_from_slice(&[6, 0x34, 0x12, 6, 0x00, 0x00, 2, 0, 7, 0, 5, 2, 0, 5]);
        for _ in 0..60 {
            script.extend_from_slice(&[2, 0, 2, 0, 5]);
        }
        script.extend_from_slice(&[6, 0x34, 0x12, 7, 1, 3, 4, 0x7E, 1, 2, 0x7E, 4, 0xFF, 0xFF]);
        assert_eq!(
            super::run(&script),
            (true, 3),
            "came up and took three sends"
        );
        super::fuzz_host(&[0x03, 6, 1, 1, 4, 0x10, 0x27, 5, 5]);
    }
}
