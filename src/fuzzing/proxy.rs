//! Fuzz entry point for the EZSP proxy's upstream input ([`crate::proxy::Relay`]): the relay
//! wired to a simulated stick that holds a network, with the fuzzer playing the upstream stack.
//! It sends raw bytes, or well-framed ASH DATA frames (from a host-role [`Link`]) carrying
//! arbitrary EZSP frames, so the EZSP layer is reached and not only the ASH deframer; it also
//! connects and disconnects, lets time pass, resets the stick and asks for our own sends.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::ash::{Link, LinkConfig, Role};
use crate::config::OtaScope;
use crate::coordinator::{DeviceTable, MessageTag, Nwk, UnicastMessage};
use crate::proxy::{Relay, RelayConfig, RelayEvent};
use crate::sim::{SimNcp, SimNcpConfig};
use crate::wire::Reader;

/// The first byte picks the EZSP version and the OTA scope; the rest is a list of operations.
/// Invariants: nothing panics; a delivery report names only a tag handed to the relay, and no
/// tag is reported twice; once the stick's port is lost, every tag has exactly one report.
pub fn fuzz_upstream(data: &[u8]) {
    let mut input = Reader::new(data);
    let Ok(selector) = input.u8("selector") else {
        return;
    };
    #[allow(clippy::disallowed_methods)] // Only offsets from this origin matter.
    let mut now = Instant::now();
    let ncp_config = SimNcpConfig {
        ezsp_version: 8 + selector % 10,
        ..SimNcpConfig::default()
    }
    .holding_network();
    let Ok(mut ncp) = SimNcp::new(ncp_config, Vec::new()) else {
        return;
    };
    let scope = match selector >> 6 {
        0 => OtaScope::None,
        1 => OtaScope::Listed([crate::zigbee::Ieee(1)].into_iter().collect()),
        _ => OtaScope::All,
    };
    let Ok(mut relay) = Relay::new(RelayConfig::new(scope, 1), DeviceTable::default()) else {
        return;
    };
    let Ok(mut upstream) = Link::new(Role::Host, LinkConfig::default()) else {
        return;
    };
    let mut reports: BTreeMap<MessageTag, u32> = BTreeMap::new();
    let mut next_tag = 1u32;
    relay.upstream_connected(now);
    upstream.reset(now);

    while let Ok(op) = input.u8("op") {
        match op % 8 {
            // Raw bytes from upstream.
            0 => {
                let len = usize::from(input.u8("len").unwrap_or(0) % 64);
                let bytes = match input.take("raw", len) {
                    Ok(bytes) => bytes,
                    Err(_) => input.rest(),
                };
                relay.handle_upstream_input(bytes, now);
            }
            // A well-framed EZSP frame from upstream.
            1 | 2 => {
                let len = usize::from(input.u8("len").unwrap_or(0) % 96);
                let frame = match input.take("frame", len) {
                    Ok(bytes) => bytes.to_vec(),
                    Err(_) => input.rest().to_vec(),
                };
                if !frame.is_empty() {
                    let _ = upstream.send(frame);
                }
            }
            // Time passes.
            3 => now += Duration::from_millis(u64::from(input.u8("ms").unwrap_or(0)) * 20),
            // Upstream leaves and comes back (a new host link, starting with RST).
            4 => {
                relay.upstream_disconnected(now);
                relay.upstream_connected(now);
                if let Ok(link) = Link::new(Role::Host, LinkConfig::default()) {
                    upstream = link;
                    upstream.reset(now);
                }
            }
            // The stick resets by itself.
            5 => ncp.reset(now),
            // One of our sends.
            6 => {
                let tag = MessageTag(next_tag);
                next_tag += 1;
                reports.insert(tag, 0);
                let cluster = if input.u8("cluster").unwrap_or(0) & 1 == 0 {
                    0x0019
                } else {
                    0x0000
                };
                relay.send_unicast(
                    tag,
                    UnicastMessage {
                        destination: Nwk(0x1001),
                        src_endpoint: 1,
                        dst_endpoint: 1,
                        profile: 0x0104,
                        cluster,
                        payload: vec![0x19, 0x01, 0x02, 0x00],
                        aps_ack: true,
                    },
                    now,
                );
            }
            // Nothing crosses this round.
            _ => {}
        }
        for _ in 0..64 {
            let mut moved = false;
            while let Some(event) = relay.poll_event() {
                moved = true;
                match event {
                    RelayEvent::OpenStick => relay.stick_opened(now),
                    RelayEvent::Delivery { tag, .. } => count(&mut reports, tag),
                    _ => {}
                }
            }
            if let Some(bytes) = upstream.poll_transmit(now) {
                moved = true;
                relay.handle_upstream_input(&bytes, now);
            }
            if let Some(bytes) = relay.poll_upstream_transmit(now) {
                moved = true;
                upstream.handle_input(&bytes, now);
            }
            while upstream.poll_event().is_some() {}
            if let Some(bytes) = relay.poll_stick_transmit(now) {
                moved = true;
                ncp.handle_input(&bytes, now);
            }
            while let Some(bytes) = ncp.poll_transmit(now) {
                moved = true;
                relay.handle_stick_input(&bytes, now);
            }
            while ncp.poll_event().is_some() {}
            if !moved {
                break;
            }
        }
        relay.handle_timeout(now);
        ncp.handle_timeout(now);
        upstream.handle_timeout(now);
    }
    relay.stick_lost("fuzz run over", now);
    while let Some(event) = relay.poll_event() {
        if let RelayEvent::Delivery { tag, .. } = event {
            count(&mut reports, tag);
        }
    }
    for (tag, seen) in &reports {
        assert_eq!(*seen, 1, "{tag:?} reported {seen} times");
    }
}

#[allow(clippy::panic)] // a broken invariant must crash the fuzzer
fn count(reports: &mut BTreeMap<MessageTag, u32>, tag: MessageTag) {
    let seen = reports
        .get_mut(&tag)
        .unwrap_or_else(|| panic!("a report for {tag:?}, never handed to the relay"));
    *seen += 1;
    assert_eq!(*seen, 1, "{tag:?} reported twice");
}

#[cfg(test)]
mod tests {
    /// A few hand-made inputs reach the relay's EZSP layer without breaking an invariant.
    #[test]
    fn seeds_keep_the_invariants() {
        let mut long = vec![0xC3];
        for i in 0..200u8 {
            long.extend_from_slice(&[i % 8, i, i.wrapping_mul(7), 3, 40]);
        }
        for data in [
            &[][..],
            &[0x85, 6, 0, 3, 200, 6, 1, 3, 250, 5, 3, 255][..],
            &[0xC5, 1, 5, 0x00, 0x00, 0x00, 0x0D, 0x00, 3, 100, 6, 0][..],
            &long[..],
        ] {
            super::fuzz_upstream(data);
        }
    }
}
