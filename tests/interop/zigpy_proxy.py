"""Starts unmodified zigpy + bellows through zigbee-otad's EZSP proxy, the way Home Assistant's
ZHA would once its radio path is socket://127.0.0.1:PORT, and watches one simulated device:
its attribute reports must arrive, a Basic cluster read must be answered, and no OTA cluster
(0x0019) frame may ever reach zigpy (zigbee-otad answers those). Runs until STOP_FILE exists,
then prints one JSON line with what zigpy saw.

SIGUSR1 makes it reset the stick in place, as bellows does after an EZSP error: ASH RST on the
same connection, then its configuration, endpoints and network start-up again. When zigpy loses
its radio (bellows saw an unexpected NCP reset), it starts a new ControllerApplication, as ZHA
reloads; "restarts" counts those.

Usage: python zigpy_proxy.py PORT IEEE NWK STOP_FILE
Exit status 0 only if every step succeeded. Used by tests/it/proxy.rs and
benches/reliability/fault_matrix.py (the proxy rows).
"""

import asyncio
import json
import logging
import os
import signal
import sys
import time

import bellows.config
import bellows.zigbee.application
import zigpy.config
import zigpy.endpoint
import zigpy.types as t
import zigpy.zdo.types as zdo_t

OTA_CLUSTER = 0x0019
BASIC_CLUSTER = 0x0000


class Watcher:
    """Counts every packet zigpy receives, by cluster, and the attribute reports it decodes;
    notices when zigpy loses its radio (as Home Assistant's ZHA does, which then reloads)."""

    def __init__(self):
        self.by_cluster = {}
        self.reports = []
        self.lost = asyncio.Event()
        self.generation = 0

    def attach(self, app, endpoint):
        self.generation += 1
        received = app.packet_received

        def packet_received(packet):
            cluster = int(packet.cluster_id)
            self.by_cluster[cluster] = self.by_cluster.get(cluster, 0) + 1
            return received(packet)

        app.packet_received = packet_received
        app.add_listener(LostRadio(self, self.generation))
        endpoint.in_clusters[BASIC_CLUSTER].on_event("attribute_report", self.attribute_report)

    def attribute_report(self, event):
        self.reports.append((int(event.attribute_id), event.value))


class LostRadio:
    """zigpy's `connection_lost` of one application; an old one's (while it shuts down) is
    not news."""

    def __init__(self, watcher, generation):
        self.watcher = watcher
        self.generation = generation

    def connection_lost(self, exc):
        if self.generation == self.watcher.generation:
            self.watcher.lost.set()


async def wait_for(predicate, seconds, what):
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        await asyncio.sleep(0.1)


async def reset_in_place(app, resets):
    """bellows' own reset path (ControllerApplication._reset), then start-up again."""
    await app._reset()
    app._created_device_endpoints.clear()
    await app.register_endpoints()
    await app._ensure_network_running()
    resets.append(time.monotonic())


async def start(port: str, ieee: str, nwk: str, watcher: Watcher):
    """A ControllerApplication through the proxy, with the device known (as ZHA's database
    has it: interviewed earlier)."""
    config = {
        zigpy.config.CONF_DEVICE: {zigpy.config.CONF_DEVICE_PATH: f"socket://127.0.0.1:{port}"},
        zigpy.config.CONF_DATABASE: None,
        zigpy.config.CONF_STARTUP_ENERGY_SCAN: False,
        zigpy.config.CONF_NWK_BACKUP_ENABLED: False,
        zigpy.config.CONF_TOPO_SCAN_ENABLED: False,
        zigpy.config.CONF_OTA: {zigpy.config.CONF_OTA_ENABLED: False},
        # The socket needs no serial thread; without one, a restart after a lost radio is clean.
        bellows.config.CONF_USE_THREAD: False,
    }
    app = await bellows.zigbee.application.ControllerApplication.new(
        config, auto_form=False, start_radio=False
    )
    device = app.add_device(t.EUI64.convert(ieee), t.NWK(int(nwk, 16)))
    device.node_desc, _ = zdo_t.NodeDescriptor.deserialize(
        bytes([0x01, 0x40, 0x8E, 0x89, 0x11, 0x52, 0x52, 0x00, 0x00, 0x00, 0x52, 0x00, 0x00])
    )
    endpoint = device.add_endpoint(1)
    endpoint.profile_id = 260
    endpoint.device_type = 0x0100
    endpoint.add_input_cluster(BASIC_CLUSTER)
    endpoint.add_output_cluster(OTA_CLUSTER)
    endpoint.status = zigpy.endpoint.Status.ZDO_INIT
    watcher.attach(app, endpoint)
    await app.startup(auto_form=False)
    print("zigpy started through the proxy", file=sys.stderr, flush=True)
    return app, endpoint


async def main(port: str, ieee: str, nwk: str, stop_file: str) -> int:
    watcher = Watcher()
    app, endpoint = await start(port, ieee, nwk, watcher)
    resets = []
    restarts = 0
    pending = []
    asyncio.get_running_loop().add_signal_handler(
        signal.SIGUSR1, lambda: pending.append(asyncio.ensure_future(reset_in_place(app, resets)))
    )
    try:
        await wait_for(
            lambda: watcher.reports, 60, f"no attribute report; messages {watcher.by_cluster}"
        )
        result, failed = await endpoint.in_clusters[BASIC_CLUSTER].read_attributes(
            ["model", "manufacturer"]
        )
        while not os.path.exists(stop_file):
            if watcher.lost.is_set():
                # What ZHA does when its radio reset under it: start again (Home Assistant
                # retries a failed set-up after a pause).
                watcher.lost.clear()
                restarts += 1
                # The old application's own connection_lost while it shuts down is not news.
                watcher.generation += 1
                try:
                    await app.shutdown()
                except Exception as e:  # noqa: BLE001
                    print(f"shutdown after the lost radio: {e!r}", file=sys.stderr)
                for attempt in range(10):
                    await asyncio.sleep(1)
                    try:
                        app, endpoint = await start(port, ieee, nwk, watcher)
                        break
                    except Exception as e:  # noqa: BLE001
                        print(f"restart {attempt + 1} failed: {e!r}", file=sys.stderr, flush=True)
                else:
                    raise RuntimeError("zigpy could not start again")
            await asyncio.sleep(0.1)
        for task in pending:
            await task
        print(
            json.dumps(
                {
                    "reports": len(watcher.reports),
                    "resets": len(resets),
                    "restarts": restarts,
                    "model": str(result.get("model")),
                    "manufacturer": str(result.get("manufacturer")),
                    "read_failed": {str(k): str(v) for k, v in failed.items()},
                    "by_cluster": {f"0x{c:04X}": n for c, n in watcher.by_cluster.items()},
                    "ota_frames": watcher.by_cluster.get(OTA_CLUSTER, 0),
                    "ezsp_version": app._ezsp.ezsp_version,
                }
            ),
            flush=True,
        )
    finally:
        await app.shutdown()
    return 0


if __name__ == "__main__":
    if "-v" in sys.argv:
        sys.argv.remove("-v")
        logging.basicConfig(level=logging.DEBUG)
    sys.exit(asyncio.run(main(*sys.argv[1:5])))
