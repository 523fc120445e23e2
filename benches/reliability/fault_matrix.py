#!/usr/bin/env python3
"""The zigbee-otad fault matrix (issue 7 item 4): one reproducible run per fault, one table.

Each row is independent: a fresh temporary directory, a `zigbee-otad simulate` process (the
simulated EZSP NCP on a pty, with simulated OTA client devices that check every byte they receive
against the image file), and a `zigbee-otad run` daemon configured with a directory catalog that
holds those images. The script injects the row's fault, polls the daemon's status socket every
POLL_SECONDS, and reads the simulator's upgrade reports. Per row it prints:

- byte-exact: devices whose last report is "Upgraded, verified" (the simulator compared every
  byte of the received image with the file), out of the devices in the row;
- lost: devices that did not end byte-exact before the row's deadline;
- failed attempts: upgrade reports other than "Upgraded, verified" (a device that gave up or
  received a wrong image and started over);
- retries: the devices' re-sent requests (from the reports);
- B/s per device: image bytes over each device's download time (from the reports), averaged;
- recovery: for a one-off fault, from the fault to the coordinator `up` in the status snapshot,
  to the next served block, and from the last fault to the end of the last download; for a
  continuous fault, the longest stall (no transfer progress while a transfer was open);
- daemon CPU: utime+stime of every daemon process of the row (/proc/PID/stat), in seconds and as
  a share of one core over the row's wall time.

The catalog rows (`catalog-*`, `disk-full`) add a fourth device whose only image is listed by a
zigbee-OTA index served by a small `http.server` on 127.0.0.1 (`IndexServer`), which can be
down, answer 500 or 429, stall, or lie about the sha512; `disk-full` puts the daemon's state and
cache directories on a nearly full tmpfs (root only; skipped with a message otherwise).

Only the Python standard library is used. The images are synthetic (GBL payloads with a valid
CRC), written into each row's temporary directory; no vendor firmware is involved.

Usage (from the crate root, after `cargo build --release`):

    python3 benches/reliability/fault_matrix.py            # whole matrix (~11 min), markdown on stdout
    python3 benches/reliability/fault_matrix.py --rows loss-5,kill-9 --keep
    RUST_LOG=debug python3 benches/reliability/fault_matrix.py --rows lost-report-5 --keep

The seed fixes the simulator's fault generator and the kill moments; a failing row replays with
the same seed (timing on a shared machine still varies a little). docs/RELIABILITY.md holds the
table, the machine it ran on and what each row shows.
"""

from __future__ import annotations

import argparse
import hashlib
import http.server
import json
import os
import platform
import queue
import random
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

CRATE_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_BINARY = CRATE_ROOT / "target" / "release" / "zigbee-otad"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
POLL_SECONDS = 0.1

# The devices of every row: two of one kind and one of another, so the daemon serves two images
# and three transfers at once (its default `max_concurrent_transfers`).
IMAGE_SPECS = [
    # (manufacturer code, image type, new file version)
    (0x1189, 0x0001, 0x0000_0002),
    (0x100B, 0x0119, 0x0000_0002),
]
# Firmware bytes of the two images in most rows; the heavy-loss rows use smaller ones so that
# they finish in minutes (throughput, not size, is what they compare).
DEFAULT_FIRMWARE_BYTES = (24_000, 16_000)
DEVICE_SPECS = ["0x1189:0x0001:1", "0x1189:0x0001:1", "0x100B:0x0119:1"]
# Their IEEE addresses (the simulator numbers devices from 1): the B/s column averages these, so
# rows with a catalog device compare with the others.
FOLDER_DEVICE_IEEES = {f"00:12:4b:00:00:00:00:{i:02x}" for i in range(1, len(DEVICE_SPECS) + 1)}


# ---------------------------------------------------------------------------------------------
# Synthetic OTA files (ZCL8 §11.4; PROTOCOLS.md §9) with a GBL payload (UG266)
# ---------------------------------------------------------------------------------------------

GBL_HEADER_TAG = bytes.fromhex("EB17A603")
GBL_PROGRAM_TAG = bytes.fromhex("FE0101FE")
GBL_END_TAG = bytes.fromhex("FC0404FC")
OTA_MAGIC = 0x0BEEF11E
OTA_HEADER_LENGTH = 56
TAG_UPGRADE_IMAGE = 0x0000


def gbl_payload(firmware: bytes) -> bytes:
    """A GBL image: header tag (version 3.0, type 0), one program tag, end tag with CRC-32."""
    body = GBL_HEADER_TAG + struct.pack("<III", 8, 0x0300_0000, 0)
    body += GBL_PROGRAM_TAG + struct.pack("<I", len(firmware)) + firmware
    body += GBL_END_TAG + struct.pack("<I", 4)
    return body + struct.pack("<I", zlib.crc32(body))


def ota_file(manufacturer: int, image_type: int, version: int, firmware: bytes) -> bytes:
    """An OTA Upgrade file: the 56-byte header and one Upgrade Image sub-element."""
    payload = gbl_payload(firmware)
    element = struct.pack("<HI", TAG_UPGRADE_IMAGE, len(payload)) + payload
    total = OTA_HEADER_LENGTH + len(element)
    header_string = b"zigbee-otad fault matrix".ljust(32, b"\0")
    header = struct.pack(
        "<IHHHHHIH32sI",
        OTA_MAGIC,
        0x0100,  # header version
        OTA_HEADER_LENGTH,
        0,  # field control: no optional fields
        manufacturer,
        image_type,
        version,
        2,  # stack version: ZigBee PRO
        header_string,
        total,
    )
    return header + element


def write_images(directory: Path, seed: int, sizes: tuple[int, int]) -> list[Path]:
    generator = random.Random(seed)
    paths = []
    for (manufacturer, image_type, version), size in zip(IMAGE_SPECS, sizes):
        firmware = bytes(generator.getrandbits(8) for _ in range(size))
        path = directory / f"{manufacturer:04x}-{image_type:04x}.ota"
        path.write_bytes(ota_file(manufacturer, image_type, version, firmware))
        paths.append(path)
    return paths


# ---------------------------------------------------------------------------------------------
# Processes
# ---------------------------------------------------------------------------------------------


def peak_rss_kib(pid: int) -> int | None:
    """VmHWM (the peak resident set) of a live process, in KiB, or None once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def cpu_seconds(pid: int) -> float | None:
    """utime + stime of a live process, or None once it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name may contain spaces; the fields after it are space separated.
    fields = text[text.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


@dataclass
class Report:
    """One "device ... Upgraded, verified (N bytes, R block requests, X retries, ...)" line."""

    at: float
    ieee: str
    verified: bool
    image_size: int
    retries: int
    elapsed: float
    line: str

    @staticmethod
    def parse(at: float, line: str) -> Report:
        ieee = line.split()[1]
        counts = line[line.rindex("(") + 1 : line.rindex(")")]
        numbers = {}
        for part in counts.split(","):
            value, _, name = part.strip().partition(" ")
            numbers[name] = float(value)
        return Report(
            at=at,
            ieee=ieee,
            verified="Upgraded, verified" in line,
            image_size=int(numbers.get("bytes", 0)),
            retries=int(numbers.get("retries", 0)),
            elapsed=numbers.get("s", 0.0),
            line=line,
        )


class Simulator:
    """`zigbee-otad simulate`: the pty path on the first stdout line, then upgrade reports."""

    def __init__(self, binary: Path, args: list[str], log: Path):
        self.log = open(log, "ab")
        self.process = subprocess.Popen(
            [str(binary), "simulate", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self.reports: list[Report] = []
        self.resets: list[float] = []
        self.unplugged: list[float] = []
        self.replugged: list[float] = []
        self.first_line: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read_stdout, daemon=True).start()
        threading.Thread(target=self._read_stderr, daemon=True).start()

    def _read_stdout(self) -> None:
        assert self.process.stdout is not None
        first = True
        for raw in self.process.stdout:
            line = raw.decode(errors="replace").rstrip("\n")
            self.log.write(f"[{time.monotonic():.3f} stdout] {line}\n".encode())
            self.log.flush()
            if first:
                self.first_line.put(line)
                first = False
                continue
            if line.startswith("device "):
                self.reports.append(Report.parse(time.monotonic(), line))

    def _read_stderr(self) -> None:
        assert self.process.stderr is not None
        for raw in self.process.stderr:
            line = raw.decode(errors="replace")
            self.log.write(f"[{time.monotonic():.3f} stderr] {line}".encode())
            self.log.flush()
            if "NCP reset (injected)" in line:
                self.resets.append(time.monotonic())
            elif "serial port unplugged" in line:
                self.unplugged.append(time.monotonic())
            elif "serial port plugged in again" in line:
                self.replugged.append(time.monotonic())

    def pty(self, timeout: float = 15.0) -> str:
        return self.first_line.get(timeout=timeout)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.kill()


class Daemon:
    """`zigbee-otad run`; its CPU time is sampled while it lives and kept after it ends."""

    def __init__(self, binary: Path, config: Path, log: Path):
        self.process = subprocess.Popen(
            [str(binary), "run", "--config", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=open(log, "ab"),
            env={**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "info")},
        )
        self.last_cpu = 0.0
        self.peak_rss_kib = 0

    def sample_cpu(self) -> float:
        value = cpu_seconds(self.process.pid)
        if value is not None:
            self.last_cpu = value
        self.peak_rss_kib = max(self.peak_rss_kib, peak_rss_kib(self.process.pid) or 0)
        return self.last_cpu

    def kill9(self) -> None:
        self.sample_cpu()
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> int | None:
        self.sample_cpu()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                return self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                return None
        return self.process.returncode


def query_status(path: Path) -> dict | None:
    """One `{"request":"status"}` on the daemon's status socket; None when it does not answer."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
            connection.settimeout(2.0)
            connection.connect(str(path))
            connection.sendall(b'{"request":"status"}\n')
            data = b""
            while not data.endswith(b"\n"):
                chunk = connection.recv(65536)
                if not chunk:
                    break
                data += chunk
        response = json.loads(data)
    except (OSError, ValueError):
        return None
    return response.get("status") if response.get("ok") else None


# ---------------------------------------------------------------------------------------------
# One row
# ---------------------------------------------------------------------------------------------


@dataclass
class Observation:
    """What the status poller saw: when transfers moved, and when the coordinator was up."""

    progress_at: list[float] = field(default_factory=list)
    open_transfer_at: list[float] = field(default_factory=list)
    coordinator_states: list[tuple[float, str]] = field(default_factory=list)
    # The last error of each catalog source, as the status socket last showed it.
    source_errors: dict[str, str] = field(default_factory=dict)
    # The last status snapshot the socket answered.
    last_status: dict = field(default_factory=dict)


class Row:
    """Fresh directory, images, simulator and daemon; the subclasses inject the fault."""

    key = ""
    title = ""
    sim_faults: list[str] = []
    one_off = False
    firmware_bytes = DEFAULT_FIRMWARE_BYTES
    # Seconds the row may take before unfinished devices count as lost.
    deadline = 120.0
    device_specs = DEVICE_SPECS
    # Devices that must end byte-exact (a catalog row's fourth device may rightly get nothing).
    expected_devices = len(DEVICE_SPECS)
    # The coordinator: "ezsp" (the simulated EmberZNet NCP over ASH) or "znp" (the simulated
    # Z-Stack 3.x.0 stick over MT); the same devices and faults either way.
    protocol = "ezsp"

    def __init__(self, binary: Path, seed: int, deadline_scale: float, keep: bool):
        self.binary = binary
        self.seed = seed
        self.deadline = self.deadline * deadline_scale
        self.keep = keep
        self.dir = Path(tempfile.mkdtemp(prefix=f"otad-fault-{self.key}-"))
        self.images_dir = self.dir / "images"
        self.images_dir.mkdir()
        self.images = write_images(self.images_dir, seed, self.firmware_bytes)
        # Images the simulator checks devices against that are not in the images folder.
        self.extra_sim_images: list[Path] = []
        self.socket = self.dir / "status.sock"
        self.observation = Observation()
        self.daemons: list[Daemon] = []
        self.simulators: list[Simulator] = []
        self.fault_at: list[float] = []
        self.notes: list[str] = []
        self._stop_polling = threading.Event()

    # -- plumbing ------------------------------------------------------------------------------

    def sim_args(self) -> list[str]:
        args = ["--protocol", self.protocol, "--seed", str(self.seed), "--query-interval", "5"]
        for spec in self.device_specs:
            args += ["--device", spec]
        for image in self.images + self.extra_sim_images:
            args += ["--image", str(image)]
        return args + self.sim_faults

    def start_simulator(self, link: Path | None = None) -> Simulator:
        args = self.sim_args() + (["--link", str(link)] if link else [])
        simulator = Simulator(self.binary, args, self.dir / "sim.log")
        self.simulators.append(simulator)
        return simulator

    def state_root(self) -> Path:
        """Where the daemon's state and cache directories are."""
        return self.dir

    def catalog_config(self) -> str:
        """Extra `[catalog]` keys and sources before the images folder."""
        return ""

    def write_config(self, port: str) -> Path:
        config = self.dir / "config.toml"
        root = self.state_root()
        config.write_text(
            f'state_dir = "{root}/state"\n'
            f'[coordinator]\nprotocol = "{self.protocol}"\nport = "{port}"\n'
            'flow_control = "none"\n'
            f'[catalog]\ncache_dir = "{root}/cache"\n'
            + self.catalog_config()
            + f'[[catalog.source]]\nkind = "directory"\npath = "{self.images_dir}"\n'
            f'[status]\nsocket = "{self.socket}"\n'
        )
        return config

    def start_daemon(self, config: Path) -> Daemon:
        daemon = Daemon(self.binary, config, self.dir / "run.log")
        self.daemons.append(daemon)
        return daemon

    def poll(self) -> None:
        """Samples status and CPU. Progress means a transfer's offset moved or it finished, as
        seen by the daemon that answers (a restarted daemon starts with no transfers)."""
        offsets: dict[str, int] = {}
        finished: set[str] = set()
        generation = 0
        last_state = None
        while not self._stop_polling.is_set():
            now = time.monotonic()
            if generation != len(self.daemons):
                generation = len(self.daemons)
                offsets, finished = {}, set()
                # A new daemon process: its first "up" counts even if the old one was up.
                last_state = None
            status = query_status(self.socket)
            for daemon in self.daemons:
                daemon.sample_cpu()
            if status is not None:
                self.observation.last_status = status
                moved = False
                for transfer in status.get("transfers", []):
                    ieee = transfer.get("ieee", "")
                    offset = transfer.get("offset", 0)
                    if offsets.get(ieee, 0) != offset:
                        moved = True
                    offsets[ieee] = offset
                    if transfer.get("state") == "finished" and ieee not in finished:
                        finished.add(ieee)
                        moved = True
                    if transfer.get("state") in ("downloading", "waiting", "queued"):
                        self.observation.open_transfer_at.append(now)
                if moved:
                    self.observation.progress_at.append(now)
                for source in status.get("catalog", {}).get("sources", []):
                    if source.get("last_error"):
                        self.observation.source_errors[source.get("name", "")] = source[
                            "last_error"
                        ]
                state = status.get("coordinator", {}).get("state")
                if state != last_state:
                    self.observation.coordinator_states.append((now, state))
                    last_state = state
            self._stop_polling.wait(POLL_SECONDS)

    def coordinator_up_since(self, moment: float) -> float | None:
        """When the status socket first showed the coordinator up after `moment`."""
        return next(
            (t for t, state in self.observation.coordinator_states if t > moment and state == "up"),
            None,
        )

    def verified_devices(self) -> set[str]:
        """Devices whose latest report, in the latest simulator, is "Upgraded, verified"."""
        latest: dict[str, Report] = {}
        for report in self.simulators[-1].reports:
            latest[report.ieee] = report
        return {ieee for ieee, report in latest.items() if report.verified}

    def all_verified(self) -> bool:
        return len(self.verified_devices()) == len(self.device_specs)

    def wait_until(self, condition, timeout: float) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if condition():
                return True
            time.sleep(0.05)
        return condition()

    def progressed_since(self, moment: float) -> float | None:
        """The first transfer progress seen after `moment`."""
        return next((t for t in self.observation.progress_at if t > moment), None)

    def served_bytes(self) -> int:
        status = query_status(self.socket) or {}
        return sum(t.get("offset", 0) for t in status.get("transfers", []))

    # -- the row -------------------------------------------------------------------------------

    def inject(self, started: float) -> None:
        """The one-off fault; continuous faults are in `sim_faults` and need nothing here."""

    def prepare(self) -> None:
        """Set-up before the simulator starts (servers, file systems)."""

    def cleanup(self) -> None:
        """Undo `prepare`."""

    def run(self) -> dict:
        self.prepare()
        try:
            return self._run()
        finally:
            self.cleanup()

    def _run(self) -> dict:
        started = time.monotonic()
        simulator = self.start_simulator(self.link_path())
        pty = simulator.pty()
        config = self.write_config(str(self.link_path() or pty))
        self.start_daemon(config)
        poller = threading.Thread(target=self.poll, daemon=True)
        poller.start()
        try:
            self.inject(started)
            self.wait_until(self.all_verified, self.deadline - (time.monotonic() - started))
        finally:
            ended = time.monotonic()
            self._stop_polling.set()
            poller.join()
            exit_code = self.daemons[-1].stop()
            for each in self.simulators:
                each.stop()
        if exit_code != 0:
            self.notes.append(f"daemon exit code on SIGTERM: {exit_code}")
        return self.result(started, ended)

    def link_path(self) -> Path | None:
        return None

    def result(self, started: float, ended: float) -> dict:
        verified = self.verified_devices()
        reports = [r for s in self.simulators for r in s.reports]
        failed_attempts = [r for r in reports if not r.verified]
        finished_at = max((r.at for r in reports if r.verified), default=ended)
        cpu = sum(d.last_cpu for d in self.daemons)
        expected = self.expected_devices
        if expected < len(self.device_specs):
            verified = verified & FOLDER_DEVICE_IEEES
        wall = (finished_at if len(verified) == expected else ended) - started
        result = {
            "key": self.key,
            "fault": self.title,
            "byte_exact": len(verified),
            "devices": expected,
            "lost": expected - len(verified),
            "failed_attempts": len(failed_attempts),
            "retries": sum(r.retries for r in reports),
            "firmware_bytes": "/".join(str(size) for size in self.firmware_bytes),
            "device_bytes_per_s": device_rate(
                r for r in reports if r.verified and r.ieee in FOLDER_DEVICE_IEEES
            ),
            "wall_s": round(wall, 1),
            "daemon_cpu_s": round(cpu, 2),
            "daemon_cpu_pct": round(100.0 * cpu / max(ended - started, 1e-9), 1),
            "recovery": self.recovery(started, finished_at),
            "notes": self.notes + [r.line for r in failed_attempts],
            "dir": str(self.dir),
        }
        return result

    def recovery(self, started: float, finished_at: float) -> str:
        if self.one_off:
            if not self.fault_at:
                return "fault not injected"
            up, served = [], []
            for moment in self.fault_at:
                back = self.coordinator_up_since(moment)
                resumed = self.progressed_since(moment)
                up.append(f"{back - moment:.1f}" if back is not None else "never")
                served.append(f"{resumed - moment:.1f}" if resumed is not None else "never")
            tail = finished_at - self.fault_at[-1]
            return (
                f"coordinator up {', '.join(up)} s; next block {', '.join(served)} s; "
                f"all done {tail:.1f} s after"
            )
        stall = self.longest_stall()
        return f"longest stall {stall:.1f} s"

    def longest_stall(self) -> float:
        """Longest time with a transfer open and no progress (served block or state change)."""
        times = sorted(self.observation.progress_at)
        opened = self.observation.open_transfer_at
        if not opened:
            return 0.0
        longest = 0.0
        previous = opened[0]
        for moment in times:
            if moment >= previous:
                longest = max(longest, moment - previous)
                previous = moment
        return longest


def device_rate(reports) -> int:
    """Mean download rate of the devices, image bytes over each device's download time."""
    rates = [r.image_size / r.elapsed for r in reports if r.elapsed > 0]
    return round(sum(rates) / len(rates)) if rates else 0


class Baseline(Row):
    key = "baseline"
    title = "none (baseline)"


class Loss1(Row):
    key = "loss-1"
    title = "ASH frames lost, 1 % each way"
    sim_faults = ["--loss", "0.01"]


class Loss5(Row):
    key = "loss-5"
    title = "ASH frames lost, 5 % each way"
    sim_faults = ["--loss", "0.05"]
    firmware_bytes = (6_000, 4_000)
    deadline = 180.0


class Loss10(Row):
    key = "loss-10"
    title = "ASH frames lost, 10 % each way"
    sim_faults = ["--loss", "0.10"]
    # 7-12 B/s per device at this loss: 2000-byte images missed a 240 s deadline in one run.
    firmware_bytes = (1_000, 750)
    deadline = 300.0


class Corruption(Row):
    key = "corrupt-2"
    title = "one byte damaged in 2 % of ASH frames each way"
    sim_faults = ["--corrupt", "0.02"]


class DeliveryFailures(Row):
    key = "delivery-2"
    title = "2 % of unicasts DELIVERY_FAILED"
    sim_faults = ["--delivery-failure", "0.02"]


class LostReports(Row):
    key = "lost-report-5"
    title = "5 % of delivery reports never come"
    sim_faults = ["--lost-report", "0.05"]


class Combined(Row):
    key = "combined"
    title = "loss 5 % + corruption 2 % + delivery failures 1 % + lost reports 2 %"
    sim_faults = [
        "--loss", "0.05", "--corrupt", "0.02",
        "--delivery-failure", "0.01", "--lost-report", "0.02",
    ]
    firmware_bytes = (4_000, 3_000)
    deadline = 240.0


class NcpReset(Row):
    key = "ncp-reset"
    title = "NCP resets by itself once, mid-transfer (after 300 device messages)"
    sim_faults = ["--reset-after", "300"]
    one_off = True

    def inject(self, started: float) -> None:
        simulator = self.simulators[-1]
        if self.wait_until(lambda: bool(simulator.resets), self.deadline / 2):
            self.fault_at.append(simulator.resets[0])


class NcpResetEvery(Row):
    """The NCP resets by itself every 5 s (counted from its previous reset, so from the host's
    RST that follows each one), whenever nothing it sent is unacknowledged. Each reset loses
    the devices' requests and the answers in flight, so each costs every device its 5 s answer
    timeout. The images are half the usual size (24000/16000 bytes missed a 120 s deadline, 2
    of 3 devices still downloading; 6000/4000 bytes finished before the first reset)."""

    key = "ncp-reset-every"
    title = "NCP resets by itself every 5 s"
    sim_faults = ["--reset-every", "5"]
    firmware_bytes = (12_000, 8_000)
    deadline = 180.0

    def recovery(self, started: float, finished_at: float) -> str:
        resets = [t for t in self.simulators[-1].resets if t < finished_at]
        ups = [self.coordinator_up_since(t) for t in resets]
        back = [up - t for t, up in zip(resets, ups) if up is not None]
        worst = f"{max(back):.1f} s" if back else "never"
        return (
            f"{len(resets)} resets; coordinator up again within {worst} "
            f"({len(resets) - len(back)} never); {super().recovery(started, finished_at)}"
        )


class PortVanishesDevicesResume(Row):
    """The simulated stick is unplugged 6 s after start (mid-transfer): its pty closes, the
    link is removed and the NCP loses power; 3 s later a new pty appears at the same link and
    the NCP boots with its stored network. The same devices carry on, so a byte-exact end with
    no failed attempt means every device resumed its download where it was."""

    key = "port-vanish-resume"
    title = "USB stick unplugged mid-transfer for 3 s; devices keep their state and resume"
    sim_faults = ["--unplug-after", "6", "--unplug-for", "3"]
    one_off = True

    def link_path(self) -> Path | None:
        return self.dir / "ttyNCP"

    def inject(self, started: float) -> None:
        simulator = self.simulators[-1]
        if not self.wait_until(lambda: bool(simulator.replugged), self.deadline / 2):
            self.notes.append("the stick was never plugged in again")
            return
        self.fault_at.append(simulator.replugged[0])
        if simulator.unplugged:
            served = self.served_bytes()
            self.notes.append(
                f"port gone {simulator.replugged[0] - simulator.unplugged[0]:.1f} s; "
                f"{served} bytes served when it returned"
            )


class PortVanishes(Row):
    """The simulator is killed mid-transfer (the pty vanishes, the link dangles) and a new one
    comes back on the same link path 3 s later. The new simulator's devices are new instances
    that start their downloads from the beginning."""

    key = "port-vanish"
    title = "serial port vanishes mid-transfer, returns 3 s later"
    one_off = True
    gap_seconds = 3.0

    def link_path(self) -> Path | None:
        return self.dir / "ttyNCP"

    def inject(self, started: float) -> None:
        if not self.wait_until(lambda: self.served_bytes() >= 8_000, self.deadline / 2):
            self.notes.append("transfers never reached 8000 bytes before the port vanished")
        self.simulators[-1].kill()
        vanished = time.monotonic()
        time.sleep(self.gap_seconds)
        self.start_simulator(self.link_path()).pty()
        returned = time.monotonic()
        self.fault_at.append(returned)
        self.notes.append(f"port gone {returned - vanished:.1f} s")


class DaemonKill9(Row):
    """`kill -9` of the daemon at seeded random moments while transfers run; restarted 1 s
    later. The simulator (and its devices, mid-download) carries on."""

    key = "kill-9"
    title = "daemon `kill -9` at 3 random moments mid-transfer, restarted 1 s later"
    one_off = True
    kills = 3

    def inject(self, started: float) -> None:
        generator = random.Random(self.seed)
        config = self.dir / "config.toml"
        for _ in range(self.kills):
            if not self.wait_until(lambda: self.served_bytes() > 0, self.deadline / 2):
                self.notes.append("no transfer in progress to interrupt")
                return
            time.sleep(generator.uniform(0.5, 4.0))
            if self.all_verified():
                self.notes.append("all devices finished before the next kill")
                return
            self.daemons[-1].kill9()
            killed = time.monotonic()
            self.fault_at.append(killed)
            time.sleep(1.0)
            self.start_daemon(config)


# ---------------------------------------------------------------------------------------------
# ZNP rows (issue 16): the same faults against the simulated TI Z-Stack stick (`simulate
# --protocol znp`, MT frames instead of ASH) and a daemon with `protocol = "znp"`
# ---------------------------------------------------------------------------------------------


class ZnpBaseline(Baseline):
    key = "znp-baseline"
    title = "ZNP: none (baseline)"
    protocol = "znp"


class ZnpLoss1(Loss1):
    """MT has no link-layer retransmission (ASH has): a lost request or answer costs the device
    its 5 s answer timeout, so 24000/16000 bytes ran past 120 s on a loaded machine (120-135 B/s
    per device); the lossy ZNP rows use the smaller images of `loss-5`."""

    key = "znp-loss-1"
    title = "ZNP: MT frames lost, 1 % each way"
    protocol = "znp"
    firmware_bytes = (6_000, 4_000)
    deadline = 240.0


class ZnpCorruption(Corruption):
    key = "znp-corrupt-2"
    title = "ZNP: one byte damaged in 2 % of MT frames each way"
    protocol = "znp"
    firmware_bytes = (6_000, 4_000)
    deadline = 240.0


class ZnpReset(NcpReset):
    key = "znp-reset"
    title = "ZNP: stick resets by itself once, mid-transfer (after 300 device messages)"
    protocol = "znp"


class ZnpPortVanishesDevicesResume(PortVanishesDevicesResume):
    key = "znp-port-vanish-resume"
    title = "ZNP: USB stick unplugged mid-transfer for 3 s; devices keep their state and resume"
    protocol = "znp"


class ZnpDaemonKill9(DaemonKill9):
    key = "znp-kill-9"
    title = "ZNP: daemon `kill -9` at 3 random moments mid-transfer, restarted 1 s later"
    protocol = "znp"


# ---------------------------------------------------------------------------------------------
# Catalog rows: a local zigbee-OTA index server and a fourth device only it has an image for
# ---------------------------------------------------------------------------------------------

CATALOG_DEVICE = "0x1189:0x0042:1"
CATALOG_DEVICE_IEEE = "00:12:4b:00:00:00:00:04"
CATALOG_IMAGE = (0x1189, 0x0042, 0x0000_0002)
CATALOG_FIRMWARE_BYTES = 32_000
SOURCE_NAME = "zigbee-ota-index"


def reply(
    handler: http.server.BaseHTTPRequestHandler, status: int, body: bytes, headers: dict | None = None
) -> None:
    """Sends one whole HTTP response; a client that went away is not an error here."""
    handler.send_response(status)
    for name, value in (headers or {}).items():
        handler.send_header(name, value)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    try:
        handler.wfile.write(body)
    except OSError:
        pass


class IndexServer:
    """A zigbee-OTA index (`/index.json`) and its image (`/fw.ota`) on 127.0.0.1, in one of
    these modes: `healthy`; `down` (nothing listens on the port until `heal`); `500` (the index
    answers 500 Internal Server Error); `slow` (the index's headers come, then one body byte a
    second: longer than the daemon's request timeout); `429` (Too Many Requests with
    Retry-After); `bad-hash` (the index's sha512 is not the image's). `heal` makes it healthy."""

    def __init__(self, image: bytes, mode: str):
        self.image = image
        self.mode = mode
        self.requests: list[tuple[float, str, int]] = []
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()
        self.server: http.server.ThreadingHTTPServer | None = None
        if mode != "down":
            self._listen()

    @property
    def index_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/index.json"

    def _index(self) -> bytes:
        digest = hashlib.sha512(self.image).hexdigest()
        if self.mode == "bad-hash":
            digest = "ab" * 64
        manufacturer, image_type, version = CATALOG_IMAGE
        return json.dumps([{
            "fileName": "fw.ota", "fileVersion": version, "fileSize": len(self.image),
            "url": f"http://127.0.0.1:{self.port}/fw.ota", "imageType": image_type,
            "manufacturerCode": manufacturer, "sha512": digest,
        }]).encode()

    def _listen(self) -> None:
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                mode = owner.mode
                if self.path == "/fw.ota":
                    owner.requests.append((time.monotonic(), self.path, 200))
                    self._send(200, owner.image)
                elif self.path != "/index.json":
                    self._send(404, b"")
                elif mode == "500":
                    owner.requests.append((time.monotonic(), self.path, 500))
                    self._send(500, b"internal error")
                elif mode == "429":
                    owner.requests.append((time.monotonic(), self.path, 429))
                    self._send(429, b"slow down", {"Retry-After": "20"})
                elif mode == "slow":
                    owner.requests.append((time.monotonic(), self.path, 200))
                    body = owner._index()
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    try:
                        for byte in body[:60]:
                            self.wfile.write(bytes([byte]))
                            self.wfile.flush()
                            time.sleep(1.0)
                    except OSError:
                        pass  # the client gave up, as it should
                else:
                    owner.requests.append((time.monotonic(), self.path, 200))
                    self._send(200, owner._index())

            def _send(self, status: int, body: bytes, headers: dict | None = None) -> None:
                reply(self, status, body, headers)

        http.server.ThreadingHTTPServer.allow_reuse_address = True
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def heal(self) -> None:
        self.mode = "healthy"
        if self.server is None:
            self._listen()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


class CatalogRow(Row):
    """The three usual devices served from the images folder, plus a fourth whose only image
    is in a zigbee-OTA index on a local HTTP server that misbehaves as `mode` says. The daemon
    has both sources (the index first) and a 5 s request timeout. During the fault the folder
    devices must be served as in the baseline, the fourth must be offered nothing, and the
    status must name the error. Then the server is fixed (`recover`): `by-itself` leaves the
    daemon alone (after a failed refresh it tries again 1 min later, doubling, within the
    limiter's backoff); `restart` restarts the daemon at once; `after-backoff` waits until the
    source's ledger allows a call, then restarts; `None` stops there (the fourth device then is
    not expected to upgrade)."""

    mode = "healthy"
    recover: str | None = None
    one_off = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        cloud = self.dir / "cloud.ota"
        generator = random.Random(self.seed + 1)
        firmware = bytes(generator.getrandbits(8) for _ in range(CATALOG_FIRMWARE_BYTES))
        cloud.write_bytes(ota_file(*CATALOG_IMAGE, firmware))
        self.cloud_image = cloud.read_bytes()
        self.extra_sim_images = [cloud]
        expects_catalog_device = self.mode == "healthy" or self.recover is not None
        self.device_specs = DEVICE_SPECS + [CATALOG_DEVICE]
        self.expected_devices = len(self.device_specs) if expects_catalog_device else 3
        self.server: IndexServer | None = None
        self.error_seen_at: float | None = None
        self.healed_at: float | None = None

    def prepare(self) -> None:
        self.server = IndexServer(self.cloud_image, self.mode)

    def cleanup(self) -> None:
        if self.server is not None:
            self.server.stop()

    def catalog_config(self) -> str:
        assert self.server is not None
        return (
            'connect_timeout = "2s"\nrequest_timeout = "5s"\n'
            f'[[catalog.source]]\nkind = "zigbee-ota-index"\nurl = "{self.server.index_url}"\n'
        )

    def folder_devices_done(self) -> bool:
        return FOLDER_DEVICE_IEEES <= self.verified_devices()

    def all_verified(self) -> bool:
        if self.expected_devices == len(self.device_specs):
            return super().all_verified()
        return self.folder_devices_done() and self.error_seen_at is not None

    def catalog_device_reports(self) -> list[Report]:
        return [r for s in self.simulators for r in s.reports if r.ieee == CATALOG_DEVICE_IEEE]

    def heal(self) -> None:
        assert self.server is not None
        self.server.heal()

    def blocked_until(self) -> float | None:
        """The source ledger's `blocked_until`, in seconds since the epoch."""
        try:
            ledger = json.loads((self.state_root() / "state" / f"ledger-{SOURCE_NAME}.json").read_text())
        except (OSError, ValueError):
            return None
        until = ledger.get("blocked_until_unix_ms")
        return until / 1000.0 if until else None

    def inject(self, started: float) -> None:
        if self.mode == "healthy":
            return
        seen = self.wait_until(
            lambda: SOURCE_NAME in self.observation.source_errors, self.deadline / 2
        )
        if not seen:
            self.notes.append("the status never named a catalog error")
            return
        self.error_seen_at = time.monotonic()
        self.notes.append(f"status: {self.observation.source_errors[SOURCE_NAME][:160]}")
        self.wait_until(self.folder_devices_done, self.deadline / 2)
        blocked = self.blocked_until()
        if blocked is not None:
            self.notes.append(f"source held back for {blocked - time.time():.0f} s more")
        early = self.catalog_device_reports()
        if early:
            self.notes.append(f"VIOLATION: the catalog device got a report during the fault: {early[0].line}")
        if self.recover is None:
            return
        self.heal()
        self.healed_at = time.monotonic()
        self.fault_at.append(self.healed_at)
        if self.recover == "by-itself":
            return
        if self.recover == "after-backoff" and blocked is not None:
            time.sleep(max(0.0, blocked - time.time()) + 0.5)
        else:
            # The source's 1 s minimum interval since its last call (a refresh never waits).
            time.sleep(1.5)
        config = self.dir / "config.toml"
        self.daemons[-1].stop()
        self.start_daemon(config)

    def recovery(self, started: float, finished_at: float) -> str:
        requests = len(self.server.requests) if self.server else 0
        if self.mode == "healthy":
            done = [r.at for r in self.catalog_device_reports() if r.verified]
            return (
                f"catalog device byte-exact {done[0] - started:.1f} s after start; "
                f"{requests} server requests"
                if done else "catalog device never upgraded"
            )
        shown = (
            f"error in status {self.error_seen_at - started:.1f} s after start"
            if self.error_seen_at is not None else "error never shown"
        )
        if self.recover is None:
            offered = "offered nothing" if not self.catalog_device_reports() else "GOT A REPORT"
            return f"{shown}; catalog device {offered}; {requests} server requests"
        done = [r.at for r in self.catalog_device_reports() if r.verified]
        back = (
            f"catalog device byte-exact {done[0] - self.healed_at:.1f} s after the fix"
            if done and self.healed_at else "catalog device never upgraded"
        )
        return f"{shown}; {back} ({self.recover}); {requests} server requests"


class CatalogHealthy(CatalogRow):
    key = "catalog-ok"
    title = "catalog server healthy (control: the 4th device's image comes from it)"


class CatalogDown(CatalogRow):
    key = "catalog-down"
    title = "catalog server down (nothing listening), then back; the daemon is left alone"
    mode = "down"
    recover = "by-itself"
    deadline = 180.0


class CatalogServerError(CatalogRow):
    key = "catalog-500"
    title = "catalog server answers 500"
    mode = "500"


class CatalogSlow(CatalogRow):
    key = "catalog-slow"
    title = "catalog server stalls (1 body byte/s; request timeout 5 s)"
    mode = "slow"


class CatalogTooManyRequests(CatalogRow):
    key = "catalog-429"
    title = "catalog server answers 429, Retry-After 20 s"
    mode = "429"


class CatalogBadHash(CatalogRow):
    key = "catalog-bad-hash"
    title = "catalog index lies about the image's sha512, then is fixed; the daemon is left alone"
    mode = "bad-hash"
    recover = "by-itself"
    deadline = 240.0


class CacheDiskFull(CatalogRow):
    """The state and cache directories on a 256 KiB tmpfs filled to its last few pages: the
    index, ledger and known devices fit, the 32 KB catalog image does not (ENOSPC). Then the
    filler is removed; the daemon is left alone. Needs root (mount); skipped otherwise."""

    key = "disk-full"
    title = "cache disk full (tmpfs, ENOSPC on the image), then space freed; the daemon is left alone"
    mode = "healthy"
    recover = "by-itself"
    deadline = 240.0
    free_pages = 6

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.disk = self.dir / "disk"
        self.filler = self.disk / "filler"
        self.mounted = False

    @staticmethod
    def unavailable() -> str | None:
        if os.geteuid() != 0:
            return "needs root to mount a tmpfs"
        return None

    def state_root(self) -> Path:
        return self.disk

    def prepare(self) -> None:
        super().prepare()
        self.disk.mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(self.disk)], check=True)
        self.mounted = True
        (self.disk / "state").mkdir()
        (self.disk / "cache").mkdir()
        stat = os.statvfs(self.disk)
        keep = self.free_pages * stat.f_frsize
        self.filler.write_bytes(b"\0" * max(0, stat.f_bavail * stat.f_frsize - keep))
        self.notes.append(f"{os.statvfs(self.disk).f_bavail} pages free before start")

    def cleanup(self) -> None:
        super().cleanup()
        if self.mounted:
            subprocess.run(["umount", "-l", str(self.disk)], check=False)

    def inject(self, started: float) -> None:
        # The catalog call succeeds; the error the status shows is the image download's.
        self.mode = "disk-full"
        super().inject(started)

    def heal(self) -> None:
        self.filler.unlink(missing_ok=True)


# ---------------------------------------------------------------------------------------------
# A hostile device (issue 18)
# ---------------------------------------------------------------------------------------------

# The squatter's image: a Bosch one, so that its idle timeout (from the image's manufacturer)
# is the hour other servers give Bosch; only the slot rules can take the slot back.
BOSCH_IMAGE = (0x1209, 0x3050, 0x0000_0002)
BAIT_MANUFACTURER = 0x7777
BAIT_TYPES = 16


class BaitIndex:
    """A zigbee-OTA index on 127.0.0.1 listing an image for every claim the spoofer makes
    (manufacturer 0x7777, image types 0..15); it counts the image requests, which must stay
    at zero (only confirmed devices' claims may start a download)."""

    def __init__(self, image: bytes):
        self.image = image
        self.index_requests = 0
        self.image_requests = 0
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                if self.path == "/index.json":
                    owner.index_requests += 1
                    reply(self, 200, owner._index())
                elif self.path.startswith("/bait/"):
                    owner.image_requests += 1
                    reply(self, 200, owner.image)
                else:
                    reply(self, 404, b"")

        http.server.ThreadingHTTPServer.allow_reuse_address = True
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def index_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/index.json"

    def _index(self) -> bytes:
        digest = hashlib.sha512(self.image).hexdigest()
        return json.dumps([
            {
                "fileName": f"bait-{image_type}.ota", "fileVersion": 2,
                "fileSize": len(self.image), "url": f"http://127.0.0.1:{self.port}/bait/{image_type}",
                "imageType": image_type, "manufacturerCode": BAIT_MANUFACTURER, "sha512": digest,
            }
            for image_type in range(BAIT_TYPES)
        ]).encode()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Hostile(Row):
    """The usual three devices beside an attacker (`simulate --hostile`): a squatter that
    claims to be Bosch and asks for one block of a Bosch image every 9 minutes (the real
    cadence, unscaled: the row is over long before its second request), a pager asking for
    65,535-byte pages at 0 ms spacing again and again, and two spoofers each sending a query
    from a new made-up address every 250 ms: one whose addresses the NCP learns an IEEE address
    for (`spoof-named`), each claiming one of the 16 images a zigbee-OTA index on loopback
    lists, and one whose addresses nobody can name (`spoof`). Compare the B/s per device with `baseline` (clean speed). The notes give
    the slowest honest device's rate, the main loop's lateness (the status snapshot's
    `main_loop`), the daemon's peak RSS (VmHWM) and the bait downloads (must be 0)."""

    key = "hostile"
    title = "a squatter (Bosch, 1 block/9 min), a pager (65,535-byte pages, 0 ms), two spoofers (new address every 250 ms, named and not)"
    sim_faults = [
        "--hostile", f"squat:{BOSCH_IMAGE[0]:#06x}:{BOSCH_IMAGE[1]:#06x}:{BOSCH_IMAGE[2]}:540",
        "--hostile", f"pages:{IMAGE_SPECS[0][0]:#06x}:{IMAGE_SPECS[0][1]:#06x}:{IMAGE_SPECS[0][2]}",
        "--hostile", f"spoof-named:250:{BAIT_MANUFACTURER:#06x}",
        "--hostile", "spoof:250",
    ]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        generator = random.Random(self.seed + 2)
        firmware = bytes(generator.getrandbits(8) for _ in range(self.firmware_bytes[0]))
        (self.images_dir / "bosch.ota").write_bytes(ota_file(*BOSCH_IMAGE, firmware))
        self.bait_image = ota_file(BAIT_MANUFACTURER, 0, 2, b"bait" * 500)
        self.bait: BaitIndex | None = None

    def prepare(self) -> None:
        self.bait = BaitIndex(self.bait_image)

    def cleanup(self) -> None:
        if self.bait is not None:
            self.bait.stop()

    def catalog_config(self) -> str:
        assert self.bait is not None
        return f'[[catalog.source]]\nkind = "zigbee-ota-index"\nurl = "{self.bait.index_url}"\n'

    def result(self, started: float, ended: float) -> dict:
        result = super().result(started, ended)
        honest = [
            r for s in self.simulators for r in s.reports
            if r.verified and r.ieee in FOLDER_DEVICE_IEEES and r.elapsed > 0
        ]
        slowest = min((r.image_size / r.elapsed for r in honest), default=0.0)
        lag = self.observation.last_status.get("main_loop") or {}
        peak = max((d.peak_rss_kib for d in self.daemons), default=0)
        assert self.bait is not None
        result["slowest_device_bytes_per_s"] = round(slowest)
        result["main_loop"] = lag
        result["peak_rss_mib"] = round(peak / 1024, 1)
        result["bait_downloads"] = self.bait.image_requests
        result["notes"] = [
            f"slowest honest device {slowest:.0f} B/s",
            "main loop: deadline late by at most "
            f"{lag.get('max_timer_late_us', 0) / 1000:.1f} ms "
            f"({lag.get('timer_late_over_200ms', '?')} of {lag.get('timer_samples', '?')} over 200 ms), "
            f"longest turn {lag.get('max_turn_us', 0) / 1000:.1f} ms "
            f"({lag.get('turns_over_200ms', '?')} over 200 ms)",
            f"daemon peak RSS (VmHWM) {peak / 1024:.1f} MiB",
            f"bait index read {self.bait.index_requests} times; bait images downloaded "
            f"{self.bait.image_requests} times (must be 0)",
        ] + result["notes"]
        return result


class ProxyRow(Row):
    """The daemon behind the EZSP proxy (issue 17): `[proxy] listen` on a free loopback port,
    and unmodified zigpy + bellows as the upstream stack (tests/interop/zigpy_proxy.py, run by the
    venv python of `.ci/run`, $ZIGPY_PYTHON). Upstream starts the network; zigbee-otad upgrades
    the devices meanwhile. The first device also reports an attribute every 2 s: the row notes
    how many reports zigpy received and how many OTA cluster frames (must be 0), and counts the
    row lost if zigpy saw any OTA frame or no report."""

    sim_faults = ["--report-every", "2"]
    upstream_python = Path(
        os.environ.get("ZIGPY_PYTHON", "/tmp/zigbee-otad-ci-venv/bin/python")
    )
    script = CRATE_ROOT / "tests" / "interop" / "zigpy_proxy.py"

    @classmethod
    def unavailable(cls) -> str | None:
        if not cls.upstream_python.is_file():
            return f"no zigpy python at {cls.upstream_python} (bash .ci/run makes the venv)"
        return None

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.upstreams: list[tuple[subprocess.Popen, Path]] = []
        self.upstream_seen: list[dict] = []

    def write_config(self, port: str) -> Path:
        config = super().write_config(port)
        with open(config, "a") as out:
            out.write(f'[proxy]\nlisten = "tcp://127.0.0.1:{self.port}"\n')
        return config

    def start_upstream(self) -> subprocess.Popen:
        number = len(self.upstreams) + 1
        stop = self.dir / f"stop-upstream-{number}"
        process = subprocess.Popen(
            [str(self.upstream_python), str(self.script), str(self.port),
             "00:12:4b:00:00:00:00:01", "0x1001", str(stop)],
            stdout=subprocess.PIPE,
            stderr=open(self.dir / f"upstream-{number}.log", "ab"),
        )
        self.upstreams.append((process, stop))
        return process

    def inject(self, started: float) -> None:
        self.wait_until(lambda: bool(query_status(self.socket)), 30)
        self.start_upstream()
        self.upstream_fault(started)

    def upstream_fault(self, started: float) -> None:
        """The row's fault on the upstream side, if any."""

    def result(self, started: float, ended: float) -> dict:
        for process, stop in self.upstreams:
            if process.poll() is None:
                stop.touch()
                try:
                    out, _ = process.communicate(timeout=60)
                except subprocess.TimeoutExpired:
                    process.kill()
                    out, _ = process.communicate()
                line = next((l for l in out.decode().splitlines() if l.startswith("{")), None)
                if line:
                    self.upstream_seen.append(json.loads(line))
        result = super().result(started, ended)
        last = self.upstream_seen[-1] if self.upstream_seen else None
        if last is None:
            result["notes"].insert(0, "upstream zigpy printed nothing (see upstream-*.log)")
            result["lost"] = result["devices"]
        else:
            result["notes"].insert(
                0,
                f"zigpy (last upstream): {last['reports']} attribute reports, "
                f"{last['ota_frames']} OTA cluster frames, {last['resets']} resets it made, "
                f"{last.get('restarts', 0)} restarts after losing its radio",
            )
            if last["ota_frames"] or not last["reports"]:
                result["lost"] = result["devices"]
        return result

    def cleanup(self) -> None:
        for process, _ in self.upstreams:
            if process.poll() is None:
                process.kill()
                process.wait()


class ProxyBaseline(ProxyRow):
    key = "proxy"
    title = "behind the EZSP proxy, zigpy upstream"


class ProxyUpstreamReconnect(ProxyRow):
    key = "proxy-reconnect"
    title = "proxy: upstream disconnects mid-transfer, reconnects 5 s later"
    one_off = True

    def upstream_fault(self, started: float) -> None:
        if not self.wait_until(lambda: self.served_bytes() >= 6_000, self.deadline / 2):
            self.notes.append("transfers never reached 6000 bytes before upstream left")
        process, _ = self.upstreams[-1]
        process.kill()
        process.wait()
        left = time.monotonic()
        served = self.served_bytes()
        time.sleep(5)
        self.notes.append(
            f"{self.served_bytes() - served} bytes served while upstream was away"
        )
        self.start_upstream()
        self.fault_at.append(left)


class ProxyUpstreamReset(ProxyRow):
    key = "proxy-upstream-reset"
    title = "proxy: upstream resets the stick mid-transfer"
    one_off = True

    def upstream_fault(self, started: float) -> None:
        if not self.wait_until(lambda: self.served_bytes() >= 6_000, self.deadline / 2):
            self.notes.append("transfers never reached 6000 bytes before the reset")
        process, _ = self.upstreams[-1]
        process.send_signal(signal.SIGUSR1)
        self.fault_at.append(time.monotonic())


class ProxyStickReset(ProxyRow):
    key = "proxy-stick-reset"
    title = "proxy: the stick resets by itself mid-transfer"
    sim_faults = ProxyRow.sim_faults + ["--reset-after", "300"]
    one_off = True

    def upstream_fault(self, started: float) -> None:
        simulator = self.simulators[-1]
        if self.wait_until(lambda: bool(simulator.resets), self.deadline / 2):
            self.fault_at.append(simulator.resets[0])

    def all_verified(self) -> bool:
        """Also waits for zigpy to have started again (its RST and the network up once more),
        so the row ends with upstream back, not half-way through its restart."""
        log = (self.dir / "upstream-1.log").read_text(errors="replace")
        back = log.count("zigpy started through the proxy") >= 2
        return super().all_verified() and back


class ProxyLoss5(ProxyRow):
    key = "proxy-loss-5"
    title = "proxy: stick link loses 5 % of ASH frames each way"
    sim_faults = ProxyRow.sim_faults + ["--loss", "0.05"]
    firmware_bytes = (6_000, 4_000)
    deadline = 180.0


class HostileFiveSlots(Hostile):
    """`hostile` with `max_concurrent_transfers = 5`: as many slots as devices that want one
    (three honest, the squatter, the pager), to show the slot count, not the link, is what
    slows the honest devices in `hostile`."""

    key = "hostile-5-slots"
    title = "as `hostile`, with 5 transfer slots instead of 3"

    def write_config(self, port: str) -> Path:
        config = super().write_config(port)
        with config.open("a") as text:
            text.write("[server]\nmax_concurrent_transfers = 5\n")
        return config


ROWS = [
    Baseline, Loss1, Loss5, Loss10, Corruption, DeliveryFailures, LostReports, Combined,
    NcpReset, NcpResetEvery, PortVanishes, PortVanishesDevicesResume, DaemonKill9,
    CatalogHealthy, CatalogDown, CatalogServerError, CatalogSlow, CatalogTooManyRequests,
    CatalogBadHash, CacheDiskFull, Hostile, HostileFiveSlots,
    ZnpBaseline, ZnpLoss1, ZnpCorruption, ZnpReset, ZnpPortVanishesDevicesResume, ZnpDaemonKill9,
    ProxyBaseline, ProxyUpstreamReconnect, ProxyUpstreamReset, ProxyStickReset, ProxyLoss5,
]


# ---------------------------------------------------------------------------------------------
# The table
# ---------------------------------------------------------------------------------------------


def machine() -> str:
    cpus = os.cpu_count()
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{platform.system()} {platform.release()}, {cpus} CPUs ({model})"


def load_average() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def markdown(results: list[dict]) -> str:
    lines = [
        "| Fault | Firmware bytes | Byte-exact | Lost | Failed attempts | Retries | B/s per device "
        "| Recovery | Daemon CPU | Wall |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r['fault']} (`{r['key']}`) | {r['firmware_bytes']} "
            f"| {r['byte_exact']}/{r['devices']} | {r['lost']} "
            f"| {r['failed_attempts']} | {r['retries']} | {r['device_bytes_per_s']} | {r['recovery']} "
            f"| {r['daemon_cpu_s']:.2f} s ({r['daemon_cpu_pct']:.1f} %) | {r['wall_s']:.1f} s |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bin", type=Path, default=DEFAULT_BINARY, help="zigbee-otad binary")
    parser.add_argument("--rows", help="comma-separated row keys (default: all)")
    parser.add_argument("--seed", type=int, default=0x5EED)
    parser.add_argument(
        "--deadline-scale", type=float, default=1.0, help="multiplies every row's deadline"
    )
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    parser.add_argument("--keep", action="store_true", help="keep every row's directory")
    args = parser.parse_args()

    if not args.bin.is_file():
        print(f"{args.bin} not found; run `cargo build --release` first", file=sys.stderr)
        return 2
    chosen = ROWS
    if args.rows:
        wanted = args.rows.split(",")
        unknown = set(wanted) - {row.key for row in ROWS}
        if unknown:
            print(f"unknown rows {sorted(unknown)}; known: {[r.key for r in ROWS]}", file=sys.stderr)
            return 2
        chosen = [row for row in ROWS if row.key in wanted]

    started = time.monotonic()
    load_before = load_average()
    results = []
    for row_type in chosen:
        reason = getattr(row_type, "unavailable", lambda: None)()
        if reason:
            print(f"SKIPPED {row_type.key}: {reason}", file=sys.stderr)
            continue
        row = row_type(args.bin, args.seed, args.deadline_scale, args.keep)
        print(f"running {row.key} ...", file=sys.stderr)
        result = row.run()
        results.append(result)
        print(
            f"  {result['byte_exact']}/{result['devices']} byte-exact, {result['lost']} lost, "
            f"{result['recovery']}, {result['wall_s']} s; logs in {result['dir']}",
            file=sys.stderr,
        )
        for note in result["notes"]:
            print(f"  note: {note}", file=sys.stderr)
        if result["lost"] == 0 and not args.keep:
            shutil.rmtree(row.dir, ignore_errors=True)

    print(f"Machine: {machine()}; load average before {load_before}, after {load_average()}.")
    print(
        f"Seed {args.seed:#x}; {len(DEVICE_SPECS)} devices ({', '.join(DEVICE_SPECS)}); "
        f"whole run {time.monotonic() - started:.0f} s.\n"
    )
    print(markdown(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0 if all(r["lost"] == 0 for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
