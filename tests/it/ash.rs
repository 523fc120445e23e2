//! Integration tests for the `ash` module: known-answer vectors from the reference stack
//! (bellows), properties of the framing, and two links driven back to back through a lossy line
//! on a virtual clock.

use std::time::{Duration, Instant};

use proptest::prelude::*;
use serde_json::Value;
use zigbee_otad::ash::fault::{FaultConfig, FaultyLine};
use zigbee_otad::ash::frame::{self, MAX_DATA_LEN, RESERVED_BYTES, randomise};
use zigbee_otad::ash::{
    Deframer, FailReason, Frame, FrameError, Link, LinkConfig, LinkEvent, LinkState, NcpResetCode,
    Role, encode_frame,
};
use zigbee_otad::wire::{hex_spaced, parse_hex};

use crate::common::{shared_testdata, vectors_dir};

fn wire_of(frame: &Frame) -> Vec<u8> {
    let mut out = Vec::new();
    encode_frame(frame, &mut out);
    out
}

fn deframe(bytes: &[u8]) -> Vec<Result<Frame, FrameError>> {
    Deframer::new().push(bytes).collect()
}

fn hex(value: &Value) -> Vec<u8> {
    parse_hex(value.as_str().expect("hex string")).expect("valid hex")
}

/// A frame from the generator's JSON description.
fn frame_from_json(v: &Value) -> Frame {
    let num = |key: &str| v[key].as_u64().expect(key) as u8;
    let flag = |key: &str| v[key].as_bool().expect(key);
    match v["type"].as_str().expect("type") {
        "DATA" => Frame::Data {
            frm_num: num("frm_num"),
            re_tx: flag("re_tx"),
            ack_num: num("ack_num"),
            payload: hex(&v["payload"]),
        },
        "ACK" => Frame::Ack {
            ack_num: num("ack_num"),
            n_rdy: flag("n_rdy"),
        },
        "NAK" => Frame::Nak {
            ack_num: num("ack_num"),
            n_rdy: flag("n_rdy"),
        },
        "RST" => Frame::Rst,
        "RSTACK" => Frame::RstAck {
            version: num("version"),
            reset_code: NcpResetCode(num("code")),
        },
        "ERROR" => Frame::Error {
            version: num("version"),
            error_code: NcpResetCode(num("code")),
        },
        other => panic!("unknown frame type {other}"),
    }
}

fn own_vectors() -> Value {
    let path = vectors_dir().join("ash/ash_vectors.json");
    let text = std::fs::read_to_string(&path).expect("committed ASH vectors");
    serde_json::from_str(&text).expect("vector JSON")
}

// ---------------------------------------------------------------------------------------------
// 1. Known answers

#[test]
fn bellows_generated_frames_byte_exact_both_ways() {
    let vectors = own_vectors();
    let frames = vectors["frames"].as_array().unwrap();
    assert!(frames.len() >= 70, "expected the full vector set");
    let mut kinds = std::collections::BTreeSet::new();
    for case in frames {
        let name = case["name"].as_str().unwrap();
        let frame = frame_from_json(&case["frame"]);
        let wire = hex(&case["wire"]);
        kinds.insert(case["frame"]["type"].as_str().unwrap().to_owned());
        assert_eq!(
            hex_spaced(&wire_of(&frame)),
            hex_spaced(&wire),
            "encode {name}"
        );
        assert_eq!(frame.encoded_len(), wire.len(), "encoded_len {name}");
        assert_eq!(deframe(&wire), vec![Ok(frame)], "decode {name}");
    }
    assert_eq!(kinds.len(), 6, "every frame kind covered: {kinds:?}");
}

#[test]
fn bellows_vectors_stuff_every_reserved_byte() {
    let vectors = own_vectors();
    for reserved in RESERVED_BYTES {
        let case = vectors["frames"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == format!("DATA stuffing 0x{reserved:02X}"))
            .unwrap_or_else(|| panic!("vector for 0x{reserved:02X}"));
        let wire = hex(&case["wire"]);
        let escaped = [frame::ESCAPE, reserved ^ 0x20];
        assert!(
            wire.windows(2).any(|w| w == escaped),
            "0x{reserved:02X} stuffed in {}",
            hex_spaced(&wire)
        );
    }
}

#[test]
fn bellows_randomisation_sequence() {
    let vectors = own_vectors();
    let expected = hex(&vectors["pseudo_random_sequence"]);
    let mut ours = vec![0u8; expected.len()];
    randomise(&mut ours);
    assert_eq!(ours, expected);
}

#[test]
fn bellows_receive_streams_yield_the_same_frames() {
    let vectors = own_vectors();
    for case in vectors["streams"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let expected: Vec<Frame> = case["frames"]
            .as_array()
            .unwrap()
            .iter()
            .map(frame_from_json)
            .collect();
        // bellows drops damaged frames silently; we report them as errors, so compare the
        // good frames and check that every error is a real damage report.
        let results = deframe(&hex(&case["input"]));
        let good: Vec<Frame> = results.iter().filter_map(|r| r.clone().ok()).collect();
        assert_eq!(good, expected, "stream {name}: {results:?}");
        // One-byte chunks give the same results as one push.
        let mut deframer = Deframer::new();
        let bytewise: Vec<_> = hex(&case["input"])
            .iter()
            .flat_map(|b| deframer.push(&[*b]).collect::<Vec<_>>())
            .collect();
        assert_eq!(bytewise, results, "stream {name} byte by byte");
    }
}

#[test]
fn host_reset_is_bellows_wire_bytes() {
    let vectors = own_vectors();
    let mut host = Link::new(Role::Host, LinkConfig::default()).unwrap();
    host.reset(epoch());
    assert_eq!(
        host.poll_transmit(epoch()),
        Some(hex(&vectors["host_reset_wire"]))
    );
}

/// The shared reference output (`frames/ash_vectors.out`, written by the lead with bellows 1.2.1).
#[test]
fn shared_testdata_ash_vectors() {
    let Some(dir) = shared_testdata() else {
        return;
    };
    let text = std::fs::read_to_string(dir.join("frames/ash_vectors.out")).unwrap();
    let line = |label: &str| -> Vec<u8> {
        let found = text
            .lines()
            .find(|l| l.trim_start().starts_with(label))
            .unwrap_or_else(|| panic!("line {label}"));
        let (_, value) = found.split_once(':').unwrap();
        parse_hex(value).unwrap()
    };
    let data = |frm_num, re_tx, ack_num, payload: &str| Frame::Data {
        frm_num,
        re_tx,
        ack_num,
        payload: parse_hex(payload).unwrap(),
    };
    let expectations = [
        (
            "RSTACK RESET_SOFTWARE",
            Frame::RstAck {
                version: 2,
                reset_code: NcpResetCode::RESET_SOFTWARE,
            },
        ),
        (
            "RSTACK RESET_POWER_ON",
            Frame::RstAck {
                version: 2,
                reset_code: NcpResetCode::RESET_POWER_ON,
            },
        ),
        (
            // The label says 0x52 but bellows wrote code 0x51 (see the bytes).
            "ERROR v1 0x52",
            Frame::Error {
                version: 2,
                error_code: NcpResetCode::ERROR_EXCEEDED_MAXIMUM_ACK_TIMEOUT_COUNT,
            },
        ),
        (
            "ACK(1)+",
            Frame::Ack {
                ack_num: 1,
                n_rdy: false,
            },
        ),
        (
            "ACK(6)-",
            Frame::Ack {
                ack_num: 6,
                n_rdy: true,
            },
        ),
        (
            "NAK(6)+",
            Frame::Nak {
                ack_num: 6,
                n_rdy: false,
            },
        ),
        (
            "NAK(5)-",
            Frame::Nak {
                ack_num: 5,
                n_rdy: true,
            },
        ),
        ("DATA(2,5,0) ver(2)", data(2, false, 5, "00 00 00 02")),
        (
            "DATA(5,3,0) ver rsp",
            data(5, false, 3, "00 80 00 02 02 11 30"),
        ),
        ("DATA(0,0,0) version(4)", data(0, false, 0, "00 00 00 04")),
        ("DATA(0,0,1) reTx ver(4)", data(0, true, 0, "00 00 00 04")),
        ("on wire (stuffed)", data(1, false, 2, "20 00 01 05 00")),
    ];
    for (label, frame) in expectations {
        let wire = line(label);
        assert_eq!(hex_spaced(&wire_of(&frame)), hex_spaced(&wire), "{label}");
        assert_eq!(deframe(&wire), vec![Ok(frame.clone())], "{label}");
    }
    let mut unstuffed = Vec::new();
    data(1, false, 2, "20 00 01 05 00").encode_unstuffed(&mut unstuffed);
    assert_eq!(unstuffed, line("unstuffed frame"));
    let mut rst = Vec::new();
    Frame::Rst.encode_unstuffed(&mut rst);
    assert_eq!(rst, line("RST to_bytes"));
    // "1A x32 + C0 38 BC 7E": what the host link writes for reset.
    let rst_line = text.lines().find(|l| l.starts_with("RST on wire")).unwrap();
    let (_, rst_spec) = rst_line.split_once(':').unwrap();
    let (prefix, frame_hex) = rst_spec.split_once('+').unwrap();
    let (cancel_hex, count) = prefix.trim().split_once(" x").unwrap();
    let mut expected_rst = parse_hex(cancel_hex)
        .unwrap()
        .repeat(count.parse().unwrap());
    expected_rst.extend(parse_hex(frame_hex).unwrap());
    let mut host = Link::new(Role::Host, LinkConfig::default()).unwrap();
    host.reset(epoch());
    assert_eq!(host.poll_transmit(epoch()), Some(expected_rst));
    let mut lfsr = [0u8; 8];
    randomise(&mut lfsr);
    assert_eq!(lfsr.to_vec(), line("LFSR first 8 bytes"));
    assert_eq!(
        Frame::decode(&line("RST to_bytes")),
        Ok(Frame::Rst),
        "unstuffed RST decodes"
    );
}

// ---------------------------------------------------------------------------------------------
// 2. Properties

fn any_frame() -> impl Strategy<Value = Frame> {
    prop_oneof![
        (
            0u8..8,
            any::<bool>(),
            0u8..8,
            proptest::collection::vec(any::<u8>(), 0..=MAX_DATA_LEN)
        )
            .prop_map(|(frm_num, re_tx, ack_num, payload)| Frame::Data {
                frm_num,
                re_tx,
                ack_num,
                payload
            }),
        (0u8..8, any::<bool>()).prop_map(|(ack_num, n_rdy)| Frame::Ack { ack_num, n_rdy }),
        (0u8..8, any::<bool>()).prop_map(|(ack_num, n_rdy)| Frame::Nak { ack_num, n_rdy }),
        Just(Frame::Rst),
        (any::<u8>(), any::<u8>()).prop_map(|(version, code)| Frame::RstAck {
            version,
            reset_code: NcpResetCode(code)
        }),
        (any::<u8>(), any::<u8>()).prop_map(|(version, code)| Frame::Error {
            version,
            error_code: NcpResetCode(code)
        }),
    ]
}

proptest! {
    #[test]
    fn stuffed_output_has_no_reserved_byte_before_the_flag(frame in any_frame()) {
        let wire = wire_of(&frame);
        let (flag, body) = wire.split_last().unwrap();
        prop_assert_eq!(*flag, frame::FLAG);
        // ESCAPE itself is allowed, but only as an escape: each is followed by a stuffed byte.
        let mut escaped = false;
        for &b in body {
            if escaped {
                prop_assert!(RESERVED_BYTES.contains(&(b ^ 0x20)));
                escaped = false;
            } else if b == frame::ESCAPE {
                escaped = true;
            } else {
                prop_assert!(!RESERVED_BYTES.contains(&b), "0x{:02X} in {}", b, hex_spaced(&wire));
            }
        }
        prop_assert!(!escaped);
        prop_assert_eq!(frame.encoded_len(), wire.len());
    }

    #[test]
    fn randomise_twice_is_identity(data in proptest::collection::vec(any::<u8>(), 0..600)) {
        let mut twice = data.clone();
        randomise(&mut twice);
        randomise(&mut twice);
        prop_assert_eq!(twice, data);
    }

    #[test]
    fn encode_then_deframe_round_trips(frames in proptest::collection::vec(any_frame(), 1..6),
                                       chunk in 1usize..40) {
        let mut wire = Vec::new();
        for f in &frames {
            encode_frame(f, &mut wire);
        }
        let mut deframer = Deframer::new();
        let mut decoded = Vec::new();
        for piece in wire.chunks(chunk) {
            decoded.extend(deframer.push(piece));
        }
        let expected: Vec<_> = frames.into_iter().map(Ok).collect();
        prop_assert_eq!(decoded, expected);
        prop_assert_eq!(deframer.dropped_bytes(), 0);
    }

    #[test]
    fn deframer_survives_any_bytes_and_resyncs(noise in proptest::collection::vec(any::<u8>(), 0..2000),
                                                frame in any_frame()) {
        let mut deframer = Deframer::new();
        // Never panics, whatever comes in.
        let _ = deframer.push(&noise).count();
        // After a CANCEL (or a Flag) the next good frame comes through.
        let mut wire = vec![frame::CANCEL];
        encode_frame(&frame, &mut wire);
        let results: Vec<_> = deframer.push(&wire).collect();
        prop_assert_eq!(results, vec![Ok(frame)]);
    }

    #[test]
    fn link_never_panics_on_noise(noise in proptest::collection::vec(any::<u8>(), 0..1500)) {
        for role in [Role::Host, Role::Ncp] {
            let mut link = Link::new(role, LinkConfig::default()).unwrap();
            let now = epoch();
            link.reset(now);
            link.handle_input(&noise, now);
            while link.poll_transmit(now).is_some() {}
            while link.poll_event().is_some() {}
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 3. Two links back to back on a virtual clock

#[allow(clippy::disallowed_methods)] // The only real clock reading: an arbitrary origin.
fn epoch() -> Instant {
    Instant::now()
}

/// A host and an NCP joined by two faulty lines, with a virtual clock (quinn's `Pair`).
struct Pair {
    now: Instant,
    host: Link,
    ncp: Link,
    to_ncp: FaultyLine,
    to_host: FaultyLine,
    host_events: Vec<LinkEvent>,
    ncp_events: Vec<LinkEvent>,
    /// Every chunk the host wrote, for wire-level assertions.
    host_wrote: Vec<Vec<u8>>,
}

impl Pair {
    fn new(config: LinkConfig, faults: FaultConfig, seed: u64) -> Self {
        Pair {
            now: epoch(),
            host: Link::new(Role::Host, config.clone()).unwrap(),
            ncp: Link::new(Role::Ncp, config).unwrap(),
            to_ncp: FaultyLine::new(faults, seed),
            to_host: FaultyLine::new(faults, seed.wrapping_mul(31).wrapping_add(7)),
            host_events: Vec::new(),
            ncp_events: Vec::new(),
            host_wrote: Vec::new(),
        }
    }

    /// Moves bytes and events until nothing moves; returns whether anything did.
    fn exchange(&mut self) -> bool {
        let mut moved = false;
        loop {
            let mut progress = false;
            while let Some(bytes) = self.host.poll_transmit(self.now) {
                self.host_wrote.push(bytes.clone());
                self.to_ncp.write(bytes);
                progress = true;
            }
            while let Some(bytes) = self.ncp.poll_transmit(self.now) {
                self.to_host.write(bytes);
                progress = true;
            }
            while let Some(bytes) = self.to_ncp.read() {
                self.ncp.handle_input(&bytes, self.now);
                progress = true;
            }
            while let Some(bytes) = self.to_host.read() {
                self.host.handle_input(&bytes, self.now);
                progress = true;
            }
            while let Some(event) = self.host.poll_event() {
                self.host_events.push(event);
            }
            while let Some(event) = self.ncp.poll_event() {
                self.ncp_events.push(event);
            }
            if !progress {
                return moved;
            }
            moved = true;
        }
    }

    /// Advances the clock to the earlier deadline and fires it; false when no timer runs.
    fn advance(&mut self) -> bool {
        let next = [self.host.poll_timeout(), self.ncp.poll_timeout()]
            .into_iter()
            .flatten()
            .min();
        let Some(next) = next else {
            self.to_ncp.release_held_back();
            self.to_host.release_held_back();
            return !(self.to_ncp.is_idle() && self.to_host.is_idle());
        };
        // Chunks held back for reordering come out when time passes.
        self.to_ncp.release_held_back();
        self.to_host.release_held_back();
        self.now = self.now.max(next);
        self.host.handle_timeout(self.now);
        self.ncp.handle_timeout(self.now);
        true
    }

    /// Runs until idle with no timer, or `max_steps`.
    fn drive(&mut self, max_steps: usize) {
        for _ in 0..max_steps {
            self.exchange();
            if !self.advance() {
                return;
            }
        }
        panic!("link pair did not settle in {max_steps} steps");
    }

    fn connect(&mut self) {
        self.host.reset(self.now);
        self.drive(1000);
        assert_eq!(
            self.host.state(),
            LinkState::Connected,
            "{:?}",
            self.host_events
        );
        assert_eq!(self.ncp.state(), LinkState::Connected);
    }
}

fn received(events: &[LinkEvent]) -> Vec<Vec<u8>> {
    events
        .iter()
        .filter_map(|e| match e {
            LinkEvent::Received(p) => Some(p.clone()),
            _ => None,
        })
        .collect()
}

/// Asserts that `events` delivered exactly `expected`, naming the first difference briefly.
#[track_caller]
fn assert_delivered(events: &[LinkEvent], expected: &[Vec<u8>], context: &str) {
    let got = received(events);
    let first_difference = got.iter().zip(expected).position(|(g, e)| g != e);
    assert!(
        got.len() == expected.len() && first_difference.is_none(),
        "{context}: delivered {} of {} payloads, first difference at {first_difference:?}",
        got.len(),
        expected.len()
    );
}

fn payload(direction: u8, index: usize) -> Vec<u8> {
    // EZSP-like: a sequence number, then bytes that include reserved values now and then.
    let len = 3 + index % 60;
    (0..len)
        .map(|i| (index as u8).wrapping_mul(13).wrapping_add(i as u8) ^ direction)
        .chain([direction, (index >> 8) as u8, index as u8])
        .collect()
}

/// Sends `count` payloads each way through the pair, refilling the send queues as they drain.
fn transfer_both_ways(pair: &mut Pair, count: usize, max_steps: usize) {
    let (mut next_up, mut next_down) = (0, 0);
    for _ in 0..max_steps {
        while next_up < count && pair.host.send(payload(0x00, next_up)).is_ok() {
            next_up += 1;
        }
        while next_down < count && pair.ncp.send(payload(0xFF, next_down)).is_ok() {
            next_down += 1;
        }
        let moved = pair.exchange();
        let done = next_up == count
            && next_down == count
            && pair.host.unacknowledged() == 0
            && pair.ncp.unacknowledged() == 0;
        if done || pair.host.state() != LinkState::Connected {
            return;
        }
        if !moved && !pair.advance() {
            return;
        }
    }
    panic!("transfer did not finish in {max_steps} steps");
}

#[test]
fn reset_handshake_on_a_clean_line() {
    let mut pair = Pair::new(LinkConfig::default(), FaultConfig::default(), 1);
    assert_eq!(pair.host.state(), LinkState::Disconnected);
    assert!(pair.host.send(vec![1, 2, 3]).is_err(), "not connected yet");
    pair.connect();
    assert_eq!(
        pair.host_events,
        vec![LinkEvent::Connected {
            reset_code: NcpResetCode::RESET_SOFTWARE
        }]
    );
    assert_eq!(
        pair.ncp_events,
        vec![LinkEvent::Connected {
            reset_code: NcpResetCode::RESET_SOFTWARE
        }]
    );
    let mut rst = vec![frame::CANCEL; 32];
    rst.extend(parse_hex("C0 38 BC 7E").unwrap());
    assert_eq!(pair.host_wrote, vec![rst]);
}

#[test]
fn clean_line_delivers_in_order_with_every_window() {
    for window in 1..=7 {
        let config = LinkConfig {
            window,
            ..LinkConfig::default()
        };
        let mut pair = Pair::new(config, FaultConfig::default(), 2);
        pair.connect();
        transfer_both_ways(&mut pair, 100, 10_000);
        let up: Vec<_> = (0..100).map(|i| payload(0x00, i)).collect();
        let down: Vec<_> = (0..100).map(|i| payload(0xFF, i)).collect();
        assert_delivered(&pair.ncp_events, &up, &format!("up, window {window}"));
        assert_delivered(&pair.host_events, &down, &format!("down, window {window}"));
        assert_eq!(pair.host.stats().retransmissions, 0, "window {window}");
        assert_eq!(pair.host.stats().naks_sent, 0);
        // One ACK for every DATA frame received.
        assert_eq!(pair.host.stats().acks_sent, 100);
        assert_eq!(pair.ncp.stats().acks_sent, 100);
    }
}

#[test]
fn lossy_line_delivers_every_payload_exactly_once_in_order() {
    let faults = FaultConfig {
        drop: 0.06,
        duplicate: 0.04,
        reorder: 0.04,
        corrupt: 0.04,
        substitute: 0.02,
    };
    let mut totals = (0, 0, 0);
    for seed in 0..12u64 {
        for window in [1u8, 3, 7] {
            let config = LinkConfig {
                window,
                max_ack_timeouts: 50, // a terrible line, but not a dead one
                ..LinkConfig::default()
            };
            let mut pair = Pair::new(config, faults, seed);
            pair.connect();
            transfer_both_ways(&mut pair, 150, 100_000);
            let up: Vec<_> = (0..150).map(|i| payload(0x00, i)).collect();
            let down: Vec<_> = (0..150).map(|i| payload(0xFF, i)).collect();
            assert_eq!(
                pair.host.state(),
                LinkState::Connected,
                "seed {seed} window {window}: {:?}",
                pair.host_events.last()
            );
            assert_eq!(
                received(&pair.ncp_events),
                up,
                "seed {seed} window {window}"
            );
            assert_eq!(
                received(&pair.host_events),
                down,
                "seed {seed} window {window}"
            );
            let stats = pair.host.stats();
            totals.0 += stats.retransmissions + pair.ncp.stats().retransmissions;
            totals.1 += stats.duplicates + pair.ncp.stats().duplicates;
            totals.2 += stats.naks_sent + pair.ncp.stats().naks_sent;
        }
    }
    // The faults really exercised retransmission, duplicate suppression and NAKs.
    assert!(
        totals.0 > 100 && totals.1 > 10 && totals.2 > 10,
        "{totals:?}"
    );
}

#[test]
fn ncp_unsolicited_rstack_is_a_reset_event_for_the_host() {
    let mut pair = Pair::new(LinkConfig::default(), FaultConfig::default(), 3);
    pair.connect();
    transfer_both_ways(&mut pair, 5, 1000);
    pair.host.send(vec![9, 9, 9]).unwrap();
    pair.host.send(vec![8, 8, 8]).unwrap();
    // The NCP reboots (watchdog) before the host's frames reach it.
    let mut ncp = Link::new(
        Role::Ncp,
        LinkConfig {
            reset_code: NcpResetCode::RESET_WATCHDOG,
            ..LinkConfig::default()
        },
    )
    .unwrap();
    ncp.reset(pair.now);
    pair.ncp = ncp;
    let rstack = pair.ncp.poll_transmit(pair.now).unwrap();
    let vectors = own_vectors();
    let bellows_rstack = vectors["frames"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "RSTACK RESET_WATCHDOG")
        .unwrap();
    assert_eq!(rstack, hex(&bellows_rstack["wire"]));
    pair.host.handle_input(&rstack, pair.now);
    assert_eq!(
        pair.host.poll_event(),
        Some(LinkEvent::Reset {
            reset_code: NcpResetCode::RESET_WATCHDOG,
            discarded: 2
        })
    );
    assert_eq!(pair.host.state(), LinkState::Connected);
    // Sequence numbers restarted at 0 on both sides: traffic flows again.
    pair.host_events.clear();
    pair.ncp_events.clear();
    transfer_both_ways(&mut pair, 20, 2000);
    assert_eq!(
        received(&pair.ncp_events),
        (0..20).map(|i| payload(0x00, i)).collect::<Vec<_>>()
    );
}

#[test]
fn ncp_error_frame_fails_the_host_until_reset() {
    let mut pair = Pair::new(LinkConfig::default(), FaultConfig::default(), 4);
    pair.connect();
    pair.ncp.send_error(NcpResetCode::RESET_ASSERT);
    pair.drive(100);
    assert_eq!(
        pair.host_events.last(),
        Some(&LinkEvent::NcpError {
            code: NcpResetCode::RESET_ASSERT
        })
    );
    assert_eq!(
        pair.host.state(),
        LinkState::Failed(FailReason::NcpError(NcpResetCode::RESET_ASSERT))
    );
    assert!(pair.host.send(vec![1, 2, 3]).is_err());
    // The host resets; the NCP (waiting for RST) answers and both are connected again.
    pair.connect();
    assert_eq!(
        pair.host_events.last(),
        Some(&LinkEvent::Connected {
            reset_code: NcpResetCode::RESET_SOFTWARE
        })
    );
}

#[test]
fn dead_ncp_fails_the_host_after_max_ack_timeouts() {
    let mut pair = Pair::new(LinkConfig::default(), FaultConfig::default(), 5);
    pair.connect();
    let start = pair.now;
    // From now on nothing reaches the NCP.
    pair.to_ncp.set_config(FaultConfig {
        drop: 1.0,
        ..FaultConfig::default()
    });
    pair.host.send(vec![1, 2, 3]).unwrap();
    pair.drive(1000);
    assert_eq!(
        pair.host_events.last(),
        Some(&LinkEvent::Failed {
            reason: FailReason::AckTimeouts
        })
    );
    assert_eq!(
        pair.host.state(),
        LinkState::Failed(FailReason::AckTimeouts)
    );
    let stats = pair.host.stats();
    assert_eq!(stats.ack_timeouts, 5);
    assert_eq!(stats.data_sent, 1);
    assert_eq!(stats.retransmissions, 4);
    // 1.6 s, then doubled and clamped: 3.2 s four times.
    assert_eq!(pair.now - start, Duration::from_millis(1600 + 4 * 3200));
    assert_eq!(pair.host.poll_timeout(), None);
}

#[test]
fn host_gives_up_after_rst_attempts() {
    let mut pair = Pair::new(LinkConfig::default(), FaultConfig::default(), 6);
    pair.to_ncp.set_config(FaultConfig {
        drop: 1.0,
        ..FaultConfig::default()
    });
    let start = pair.now;
    pair.host.reset(pair.now);
    pair.drive(100);
    assert_eq!(pair.host_wrote.len(), 3, "three RSTs");
    assert_eq!(
        pair.host.state(),
        LinkState::Failed(FailReason::ResetTimeout { attempts: 3 })
    );
    assert_eq!(pair.now - start, Duration::from_millis(3 * 2500));
}

#[test]
fn ncp_sends_error_after_its_own_ack_timeouts() {
    let mut pair = Pair::new(LinkConfig::default(), FaultConfig::default(), 7);
    pair.connect();
    pair.to_ncp.set_config(FaultConfig {
        drop: 1.0,
        ..FaultConfig::default()
    });
    pair.ncp.send(vec![5, 5, 5]).unwrap();
    pair.drive(1000);
    assert_eq!(pair.ncp.state(), LinkState::Failed(FailReason::AckTimeouts));
    // The host received the DATA (and its retransmissions) and then the ERROR frame.
    assert_eq!(received(&pair.host_events), vec![vec![5, 5, 5]]);
    assert_eq!(
        pair.host_events.last(),
        Some(&LinkEvent::NcpError {
            code: NcpResetCode::ERROR_EXCEEDED_MAXIMUM_ACK_TIMEOUT_COUNT
        })
    );
    assert_eq!(pair.host.stats().duplicates, 4);
}
