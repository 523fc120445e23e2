//! What the EZSP proxy (issue 17) adds to each EZSP frame; the goal is at most 1 ms at p99.
//! Prints percentiles (this is a latency distribution, so the harness is our own, not
//! criterion's mean-centred one):
//!
//! 1. **relay CPU**: the sans-IO [`Relay`] alone, wired in memory to the simulated stick
//!    ([`SimNcp`]) and to an upstream ASH link: the time from upstream bytes in to stick bytes
//!    out (a command), and from stick bytes in to upstream bytes out (its response).
//! 2. **end to end, real IO**: an upstream client speaking ASH + EZSP `nop` over loopback TCP
//!    through the real proxy task ([`ProxyCoordinator`]) to the simulator on a pty, against the
//!    same client straight on a simulator's pty: round-trip percentiles of each, and their
//!    difference. Run twice: the proxy idle, and the proxy busy with zigbee-otad's own sends
//!    (a unicast every 5 ms, which share the one-command-at-a-time line to the stick).
//!
//! `cargo bench --bench proxy_latency` (or with `-- --quick` for fewer round trips).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::disallowed_methods
)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use zigbee_otad::ash::{Link, LinkConfig, LinkEvent, Role};
use zigbee_otad::config::OtaScope;
use zigbee_otad::coordinator::{
    Coordinator, CoordinatorConfig, CoordinatorState, DeviceTable, FlowControl, Nwk, SerialConfig,
    UnicastMessage,
};
use zigbee_otad::proxy::{ProxyCoordinator, ProxySettings, Relay, RelayConfig, RelayEvent};
use zigbee_otad::sim::{SimConfig, SimNcp, SimNcpConfig, run_simulator};

/// The legacy `version` command (v13) and an extended `nop`.
fn version_frame(sequence: u8) -> Vec<u8> {
    vec![sequence, 0x00, 0x00, 13]
}
fn nop_frame(sequence: u8) -> Vec<u8> {
    vec![sequence, 0x00, 0x01, 0x05, 0x00]
}
/// `networkInit` (bitmask 0), so the network comes up and the proxy can send for us.
fn network_init_frame(sequence: u8) -> Vec<u8> {
    vec![sequence, 0x00, 0x01, 0x17, 0x00, 0x00, 0x00]
}

fn percentiles(label: &str, samples: &mut [Duration]) -> [f64; 3] {
    samples.sort();
    let at = |q: f64| {
        let index = ((samples.len() as f64 - 1.0) * q).round() as usize;
        samples[index].as_secs_f64() * 1e6
    };
    let [p50, p99, max] = [at(0.50), at(0.99), at(1.0)];
    println!(
        "{label:<44} n={:>6}  p50 {p50:>8.1} µs  p99 {p99:>8.1} µs  max {max:>8.1} µs",
        samples.len()
    );
    [p50, p99, max]
}

// ---------------------------------------------------------------------------------------------
// 1. The relay's own CPU time per frame

fn relay_cpu(round_trips: usize) {
    let now = Instant::now();
    let mut ncp = SimNcp::new(SimNcpConfig::default().holding_network(), Vec::new()).unwrap();
    let mut relay = Relay::new(RelayConfig::new(OtaScope::All, 1), DeviceTable::default()).unwrap();
    let mut upstream = Link::new(Role::Host, LinkConfig::default()).unwrap();
    relay.upstream_connected(now);
    upstream.reset(now);
    let mut commands = Vec::with_capacity(round_trips);
    let mut responses = Vec::with_capacity(round_trips);
    let mut received = 0usize;
    let mut sent = 0usize;
    let mut connected = false;
    for _ in 0..round_trips * 100 {
        while let Some(event) = relay.poll_event() {
            if event == RelayEvent::OpenStick {
                relay.stick_opened(now);
            }
        }
        while let Some(event) = upstream.poll_event() {
            match event {
                LinkEvent::Connected { .. } => connected = true,
                LinkEvent::Received(_) => received += 1,
                _ => {}
            }
        }
        if connected && sent == received && sent <= round_trips {
            let frame = if sent == 0 {
                version_frame(0)
            } else {
                nop_frame(sent as u8)
            };
            upstream.send(frame).unwrap();
            sent += 1;
        }
        let mut moved = false;
        if let Some(bytes) = upstream.poll_transmit(now) {
            moved = true;
            let start = Instant::now();
            relay.handle_upstream_input(&bytes, now);
            let out = relay.poll_stick_transmit(now);
            if sent > 1 && out.as_ref().is_some_and(|o| o.len() > 4) {
                commands.push(start.elapsed());
            }
            if let Some(out) = out {
                ncp.handle_input(&out, now);
            }
        }
        while let Some(bytes) = ncp.poll_transmit(now) {
            moved = true;
            let start = Instant::now();
            relay.handle_stick_input(&bytes, now);
            let out = relay.poll_upstream_transmit(now);
            if sent > 1 && out.as_ref().is_some_and(|o| o.len() > 4) {
                responses.push(start.elapsed());
            }
            if let Some(out) = out {
                upstream.handle_input(&out, now);
            }
        }
        if let Some(bytes) = relay.poll_stick_transmit(now) {
            moved = true;
            ncp.handle_input(&bytes, now);
        }
        if let Some(bytes) = relay.poll_upstream_transmit(now) {
            moved = true;
            upstream.handle_input(&bytes, now);
        }
        if !moved && received > round_trips {
            break;
        }
    }
    percentiles("relay CPU, upstream command -> stick", &mut commands);
    percentiles("relay CPU, stick response -> upstream", &mut responses);
}

// ---------------------------------------------------------------------------------------------
// 2. End to end over real IO

/// An upstream host: ASH over `io`, then `version`, then `round_trips` timed `nop`s.
struct Client<S> {
    io: S,
    link: Link,
    buffer: [u8; 512],
    sequence: u8,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Client<S> {
    async fn connect(io: S) -> Self {
        let mut client = Client {
            io,
            link: Link::new(Role::Host, LinkConfig::default()).unwrap(),
            buffer: [0; 512],
            sequence: 0,
        };
        client.link.reset(Instant::now());
        client
            .until(|event| matches!(event, LinkEvent::Connected { .. }))
            .await;
        client.call(version_frame(0)).await;
        client
    }

    /// Moves bytes until `done` says yes to a link event.
    async fn until(&mut self, mut done: impl FnMut(&LinkEvent) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            while let Some(bytes) = self.link.poll_transmit(Instant::now()) {
                self.io.write_all(&bytes).await.unwrap();
            }
            while let Some(event) = self.link.poll_event() {
                if done(&event) {
                    return;
                }
            }
            assert!(Instant::now() < deadline, "no answer within 20 s");
            let wake = self
                .link
                .poll_timeout()
                .unwrap_or_else(|| Instant::now() + Duration::from_millis(50));
            tokio::select! {
                read = self.io.read(&mut self.buffer) => {
                    let n = read.unwrap();
                    assert!(n > 0, "the other side closed");
                    self.link.handle_input(&self.buffer[..n], Instant::now());
                }
                _ = tokio::time::sleep_until(tokio::time::Instant::from_std(wake)) => {
                    self.link.handle_timeout(Instant::now());
                }
            }
        }
    }

    /// Sends `frame` (its first byte is replaced by the next sequence) and waits for the
    /// response with that sequence (callbacks in between are skipped); the round trip.
    async fn call(&mut self, mut frame: Vec<u8>) -> Duration {
        self.sequence = self.sequence.wrapping_add(1);
        let sequence = self.sequence;
        frame[0] = sequence;
        let frame_id = frame[2..].to_vec();
        let start = Instant::now();
        self.link.send(frame).unwrap();
        self.until(|event| match event {
            LinkEvent::Received(answer) => {
                answer.first() == Some(&sequence)
                    && answer.get(1).is_some_and(|fc| fc & 0x18 == 0)
                    && answer.get(2..4) == frame_id.get(..2)
            }
            _ => false,
        })
        .await;
        start.elapsed()
    }
}

async fn simulator() -> zigbee_otad::sim::Simulator {
    let mut config = SimConfig::default();
    config.ncp = config.ncp.holding_network();
    config.devices = vec!["0x1189:0x0001:1".parse().unwrap()];
    config.first_query_after = Duration::from_secs(3600);
    run_simulator(config).await.unwrap()
}

async fn round_trips<S: AsyncRead + AsyncWrite + Unpin>(
    client: &mut Client<S>,
    count: usize,
) -> Vec<Duration> {
    let mut samples = Vec::with_capacity(count);
    for _ in 0..count {
        samples.push(client.call(nop_frame(0)).await);
    }
    samples
}

async fn end_to_end(count: usize) {
    // Straight on the simulator's pty.
    let direct_sim = simulator().await;
    let port = tokio_serial::new(direct_sim.path(), 115_200);
    let port = tokio_serial::SerialStream::open(&port).unwrap();
    let mut direct = Client::connect(port).await;
    let mut straight = round_trips(&mut direct, count).await;
    drop(direct);
    direct_sim.shutdown().await;

    // Through the proxy.
    let sim = simulator().await;
    let state_dir = std::env::temp_dir().join(format!("otad-proxy-bench-{}", std::process::id()));
    let (proxy, mut events) = ProxyCoordinator::start(
        CoordinatorConfig {
            serial: SerialConfig {
                path: sim.path().to_string(),
                baudrate: 115_200,
                flow_control: FlowControl::None,
            },
            state_dir: state_dir.clone(),
            network: Default::default(),
            endpoint: 1,
        },
        ProxySettings {
            listen: "127.0.0.1:0".parse().unwrap(),
            link: None,
            scope: OtaScope::All,
        },
    );
    let address = loop {
        if let Some(address) = proxy.listening() {
            break address;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let stream = tokio::net::TcpStream::connect(address).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let mut client = Client::connect(stream).await;
    let mut idle = round_trips(&mut client, count).await;

    // Busy: the network comes up (upstream's networkInit), then zigbee-otad sends a unicast
    // every 5 ms while upstream's round trips are timed.
    client.call(network_init_frame(0)).await;
    let proxy = Arc::new(proxy);
    while proxy.state() != CoordinatorState::Up {
        tokio::select! {
            _ = events.recv() => {}
            _ = tokio::time::sleep(Duration::from_millis(10)) => {}
        }
    }
    let sender = {
        let proxy = Arc::clone(&proxy);
        tokio::spawn(async move {
            let mut sent = 0u32;
            loop {
                let _ = proxy.send_unicast(UnicastMessage {
                    destination: Nwk(0x1001),
                    src_endpoint: 1,
                    dst_endpoint: 1,
                    profile: 0x0104,
                    cluster: 0x0000,
                    payload: vec![0x00, 0x01, 0x00, 0x05, 0x00],
                    aps_ack: true,
                });
                sent += 1;
                tokio::time::sleep(Duration::from_millis(5)).await;
                if sent > 1_000_000 {
                    break;
                }
            }
        })
    };
    let drain = tokio::spawn(async move { while events.recv().await.is_some() {} });
    let mut busy = round_trips(&mut client, count).await;
    sender.abort();
    drop(client);
    proxy.shutdown().await;
    drain.abort();
    sim.shutdown().await;
    let _ = std::fs::remove_dir_all(state_dir);

    let [s50, s99, _] = percentiles("nop round trip, straight to the pty", &mut straight);
    let [i50, i99, _] = percentiles("nop round trip, through the idle proxy", &mut idle);
    let [b50, b99, _] = percentiles("nop round trip, through the busy proxy", &mut busy);
    println!(
        "added by the proxy: idle p50 {:+.1} µs, p99 {:+.1} µs; busy (our unicast every 5 ms) \
         p50 {:+.1} µs, p99 {:+.1} µs",
        i50 - s50,
        i99 - s99,
        b50 - s50,
        b99 - s99
    );
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let count = if quick { 300 } else { 3_000 };
    println!("proxy_latency: {count} round trips per figure");
    relay_cpu(count * 10);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(end_to_end(count));
}
