#!/usr/bin/env python3
"""Caps under the unit's memory limit (issue 18, "Prove it" 3).

The real daemon (`zigbee-otad run`, release build) runs inside a memory cgroup limited to the
systemd unit's `MemoryMax` (192 MiB; cgroup v2 `memory.max` or v1 `memory.limit_in_bytes`, or
`prlimit --as` where no cgroup can be made, which the output says), with a simulated EZSP stick
and one simulated device whose image is in a local folder. Three hostile things are waiting:

- `zeros`: a zigbee-OTA index of 32 MiB `[0,0,…]`, streamed without a length;
- `hostile`: an index whose entry declares 4 GiB, and one declaring 1 MB, both served by an
  endless body;
- `big`: 600 MiB of cached images (40 × 15 MiB, every one wanted by a known device: the state
  directory's `known-devices.json` names them), its catalog in the cache as a refresh left it.

The daemon must refuse each (the index cut at the 8 MiB catalog cap, the 4 GiB entry never
requested, the endless body cut at its declared size, the cache pruned to its 512 MiB cap),
stay up inside the limit (no OOM kill), and keep serving: the device upgrades byte-exact.
Printed: what each refusal looked like in the log, the cache size, the daemon's peak RSS
(VmHWM) and the cgroup's peak and OOM counters.

Usage (from the crate root, after `cargo build --release`, as root for the cgroup):

    python3 benches/reliability/caps_under_limit.py [--keep]
"""

from __future__ import annotations

import argparse
import hashlib
import http.server
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fault_matrix as fm  # noqa: E402  (the simulator, OTA files and status helpers)

MEMORY_MAX = 192 * 1024 * 1024  # systemd/zigbee-otad.service MemoryMax=192M
CACHE_CAP = 512 * 1024 * 1024  # catalog::sources::DEFAULT_CACHE_BYTES
BIG_IMAGES = 40
BIG_FIRMWARE = 15 * 1024 * 1024
ZEROS_BYTES = 32 * 1024 * 1024
MANUFACTURER = 0x1189
DEADLINE = 180.0


class CatalogServer:
    """The three hostile sources on 127.0.0.1 (plain http: the configured sources are loopback)."""

    def __init__(self, big_index: bytes):
        self.big_index = big_index
        self.hits: dict[str, int] = {}
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                owner.hits[self.path] = owner.hits.get(self.path, 0) + 1
                try:
                    if self.path == "/zeros.json":
                        self._stream(b"[" + b"0," * (ZEROS_BYTES // 2 - 1) + b"0]")
                    elif self.path == "/hostile.json":
                        self._send(owner.hostile_index())
                    elif self.path == "/endless.ota":
                        self._stream(None)
                    elif self.path == "/big.json":
                        self._send(owner.big_index)
                    else:
                        self.send_response(404)
                        self.end_headers()
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def _send(self, body: bytes) -> None:
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _stream(self, body: bytes | None) -> None:
                # No Content-Length: the daemon cannot refuse it up front.
                self.send_response(200)
                self.end_headers()
                chunk = b"\0" * 65536
                offset = 0
                while True:
                    if body is None:
                        self.wfile.write(chunk)
                        continue
                    if offset >= len(body):
                        return
                    self.wfile.write(body[offset : offset + 65536])
                    offset += 65536

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def hostile_index(self) -> bytes:
        # Two digests: entries with one digest are one image to the catalog.
        entry = lambda image_type, size: {  # noqa: E731
            "fileName": f"endless-{image_type}.ota", "fileVersion": 2, "fileSize": size,
            "url": self.url("/endless.ota"), "imageType": image_type,
            "manufacturerCode": MANUFACTURER, "sha512": f"{image_type:02x}" * 64,
        }
        return json.dumps([entry(2, 4_294_967_295), entry(3, 1_000_000)]).encode()

    def close(self) -> None:
        self.server.shutdown()


def big_cache(cache: Path, server_url: str) -> tuple[bytes, list[dict]]:
    """Writes 40 × 15 MiB verified images into the cache and returns their index body and the
    known devices that want them."""
    images = cache / "images"
    images.mkdir(parents=True)
    (cache / "catalogs").mkdir()
    entries, devices = [], []
    for n in range(BIG_IMAGES):
        image_type = 0x100 + n
        data = fm.ota_file(MANUFACTURER, image_type, 2, os.urandom(BIG_FIRMWARE))
        digest = hashlib.sha512(data).hexdigest()
        (images / f"sha512-{digest}").write_bytes(data)
        entries.append({
            "fileName": f"big-{n}.ota", "fileVersion": 2, "fileSize": len(data),
            "url": f"{server_url}/big/{n}.ota", "imageType": image_type,
            "manufacturerCode": MANUFACTURER, "sha512": digest,
        })
        devices.append({"manufacturer_code": MANUFACTURER, "image_type": image_type,
                        "current_file_version": 1, "hardware_version": None})
    body = json.dumps(entries).encode()
    return body, devices


def write_envelope(cache: Path, source: str, url: str, body: bytes) -> None:
    """The cache's catalog envelope (catalog::cache), as a refresh leaves it."""
    envelope = {
        "source": source, "kind": "zigbee-ota-index", "url": url,
        "validators": {"etag": None, "last_modified": None},
        "fetched_unix_ms": int(time.time() * 1000),
        "body_sha256": hashlib.sha256(body).hexdigest(), "body": body.decode(),
    }
    (cache / "catalogs" / f"{source}.json").write_text(json.dumps(envelope))


class MemoryLimit:
    """A memory cgroup (v2 or v1) limited to MEMORY_MAX, or a note that there is none."""

    def __init__(self, name: str):
        self.procs: Path | None = None
        self.kind = "none"
        v2 = Path("/sys/fs/cgroup")
        v1 = Path("/sys/fs/cgroup/memory")
        try:
            if "memory" in (v2 / "cgroup.controllers").read_text().split():
                self.dir = v2 / name
                self.dir.mkdir(exist_ok=True)
                (self.dir / "memory.max").write_text(str(MEMORY_MAX))
                (self.dir / "memory.swap.max").write_text("0")
                self.kind = "cgroup v2 memory.max"
                self.procs = self.dir / "cgroup.procs"
        except OSError:
            pass
        if self.procs is None:
            try:
                self.dir = v1 / name
                self.dir.mkdir(exist_ok=True)
                (self.dir / "memory.limit_in_bytes").write_text(str(MEMORY_MAX))
                self.kind = "cgroup v1 memory.limit_in_bytes"
                self.procs = self.dir / "cgroup.procs"
            except OSError:
                pass

    def enter(self) -> None:
        """In the child, before exec: join the cgroup (or limit the address space)."""
        if self.procs is not None:
            self.procs.write_text(str(os.getpid()))
        else:
            import resource

            # No cgroup: the address space instead (weaker: it counts mappings, not use).
            resource.setrlimit(resource.RLIMIT_AS, (4 * MEMORY_MAX, 4 * MEMORY_MAX))

    def counters(self) -> dict[str, str]:
        if self.procs is None:
            return {"limit": "RLIMIT_AS 768 MiB (no memory cgroup could be made)"}
        names = (["memory.peak", "memory.events"] if "v2" in self.kind
                 else ["memory.max_usage_in_bytes", "memory.failcnt", "memory.oom_control"])
        out = {"limit": f"{self.kind} = {MEMORY_MAX}"}
        for name in names:
            try:
                out[name] = (self.dir / name).read_text().strip().replace("\n", "; ")
            except OSError:
                pass
        return out

    def remove(self) -> None:
        if self.procs is not None:
            try:
                self.dir.rmdir()
            except OSError:
                pass


def vm_hwm_kib(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bin", type=Path, default=fm.DEFAULT_BINARY)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="otad-caps-"))
    limit = MemoryLimit(f"zigbee-otad-caps-{os.getpid()}")
    server = None
    simulator = daemon = None
    failures: list[str] = []
    try:
        started = time.monotonic()
        placeholder = "http://127.0.0.1:1"
        big_body, devices = big_cache(root / "cache", placeholder)
        server = CatalogServer(big_body)
        write_envelope(root / "cache", "big", server.url("/big.json"), big_body)
        devices += [{"manufacturer_code": MANUFACTURER, "image_type": t,
                     "current_file_version": 1, "hardware_version": None} for t in (2, 3)]
        (root / "state").mkdir()
        (root / "state" / "known-devices.json").write_text(json.dumps({"devices": devices}))
        print(f"prepared {BIG_IMAGES} cached images of {BIG_FIRMWARE >> 20} MiB in "
              f"{time.monotonic() - started:.1f} s")

        images = root / "images"
        images.mkdir()
        small = images / "small.ota"
        small.write_bytes(fm.ota_file(MANUFACTURER, 0x0001, 2, os.urandom(30_000)))
        simulator = fm.Simulator(args.bin, ["--device", "0x1189:0x0001:1", "--image", str(small),
                                            "--query-interval", "5"], root / "sim.log")
        pty = simulator.pty()
        socket_path = root / "status.sock"
        config = root / "config.toml"
        sources = "".join(
            f'[[catalog.source]]\nkind = "zigbee-ota-index"\nname = "{name}"\nurl = "{url}"\n'
            for name, url in [("zeros", server.url("/zeros.json")),
                              ("hostile", server.url("/hostile.json")),
                              ("big", server.url("/big.json"))])
        config.write_text(
            f'state_dir = "{root}/state"\n'
            f'[coordinator]\nport = "{pty}"\nflow_control = "none"\n'
            f'[catalog]\ncache_dir = "{root}/cache"\n{sources}'
            f'[[catalog.source]]\nkind = "directory"\npath = "{images}"\n'
            f'[status]\nsocket = "{socket_path}"\n')
        log = root / "run.log"
        daemon = subprocess.Popen(
            [str(args.bin), "run", "--config", str(config)],
            stdout=subprocess.DEVNULL, stderr=open(log, "ab"),
            env={**os.environ, "RUST_LOG": "info"}, preexec_fn=limit.enter)
        print(f"daemon {daemon.pid} under {limit.kind}")

        deadline = time.monotonic() + DEADLINE
        refreshed = verified = False
        peak_kib = 0
        while time.monotonic() < deadline and not (refreshed and verified):
            time.sleep(0.5)
            if daemon.poll() is not None:
                failures.append(f"the daemon exited ({daemon.returncode})")
                break
            peak_kib = max(peak_kib, vm_hwm_kib(daemon.pid) or 0)
            text = log.read_text(errors="replace")
            refreshed = "catalog refresh finished" in text
            verified = any(r.verified for r in simulator.reports)
        status = fm.query_status(socket_path)
        alive = daemon.poll() is None
        cache_bytes = sum(p.stat().st_size for p in (root / "cache" / "images").iterdir())
        text = log.read_text(errors="replace")

        print("\n| check | result |\n|---|---|")
        rows = [
            ("daemon alive at the end", alive),
            ("device upgraded byte-exact meanwhile", verified),
            ("status socket answers", status is not None),
            ("a catalog refresh finished", refreshed),
            ("no NCP restart (the main loop kept the serial link alive)",
             "restarting the NCP" not in text),
            (f"cache {cache_bytes >> 20} MiB ≤ cap {CACHE_CAP >> 20} MiB", cache_bytes <= CACHE_CAP),
            ("32 MiB index cut at the 8 MiB cap", "8388608" in text),
            ("4 GiB entry never requested; the endless body fetched once and cut",
             server.hits.get("/endless.ota", 0) == 1 and "1065536" in text),
            (f"daemon peak RSS {peak_kib / 1024:.1f} MiB < 64 MiB", 0 < peak_kib < 64 * 1024),
        ]
        for name, ok in rows:
            print(f"| {name} | {'yes' if ok else 'NO'} |")
            if not ok:
                failures.append(name)
        print(f"\nrequests served: {server.hits}")
        for key, value in limit.counters().items():
            print(f"{key}: {value}")
        print("\nthe daemon's log lines about the hostile sources:")
        for line in text.splitlines():
            if any(word in line for word in ("too large", "TooLarge", "cache is full", "pruned",
                                             "refused", "4294967295", "over its cap", "exceeds")):
                print("  " + line[:240])
    finally:
        if daemon is not None and daemon.poll() is None:
            daemon.terminate()
            try:
                daemon.wait(timeout=15)
            except subprocess.TimeoutExpired:
                daemon.kill()
        if simulator is not None:
            simulator.stop()
        if server is not None:
            server.close()
        limit.remove()
        if args.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    if failures:
        print(f"\nFAILED: {failures}")
        return 1
    print("\ncaps held")
    return 0


if __name__ == "__main__":
    sys.exit(main())
