"""Starts unmodified zigpy + bellows through zigbee-otad's EZSP proxy, the way Home Assistant's
ZHA would once its radio path is socket://127.0.0.1:PORT, and watches one simulated device:
its attribute reports must arrive, a Basic cluster read must be answered, and no OTA cluster
(0x0019) frame may ever reach zigpy (zigbee-otad answers those). Runs until STOP_FILE exists,
then prints one JSON line with what zigpy saw.

Usage: python zigpy_proxy.py PORT IEEE NWK STOP_FILE
Exit status 0 only if every step succeeded. Used by tests/it/proxy.rs.
"""

import asyncio
import json
import logging
import os
import sys
import time

import bellows.zigbee.application
import zigpy.config
import zigpy.endpoint
import zigpy.types as t
import zigpy.zdo.types as zdo_t

OTA_CLUSTER = 0x0019
BASIC_CLUSTER = 0x0000


class Watcher:
    """Counts every packet zigpy receives, by cluster, and the attribute reports it decodes."""

    def __init__(self, app):
        self.by_cluster = {}
        self.reports = []
        self._received = app.packet_received
        app.packet_received = self.packet_received

    def packet_received(self, packet):
        cluster = int(packet.cluster_id)
        self.by_cluster[cluster] = self.by_cluster.get(cluster, 0) + 1
        return self._received(packet)

    def attribute_report(self, event):
        self.reports.append((int(event.attribute_id), event.value))


async def wait_for(predicate, seconds, what):
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        await asyncio.sleep(0.1)


async def main(port: str, ieee: str, nwk: str, stop_file: str) -> int:
    config = {
        zigpy.config.CONF_DEVICE: {zigpy.config.CONF_DEVICE_PATH: f"socket://127.0.0.1:{port}"},
        zigpy.config.CONF_DATABASE: None,
        zigpy.config.CONF_STARTUP_ENERGY_SCAN: False,
        zigpy.config.CONF_NWK_BACKUP_ENABLED: False,
        zigpy.config.CONF_TOPO_SCAN_ENABLED: False,
        zigpy.config.CONF_OTA: {zigpy.config.CONF_OTA_ENABLED: False},
    }
    app = await bellows.zigbee.application.ControllerApplication.new(
        config, auto_form=False, start_radio=False
    )
    # The device as a paired one: known from an earlier interview (ZHA keeps it in its database).
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
    watcher = Watcher(app)
    endpoint.in_clusters[BASIC_CLUSTER].on_event("attribute_report", watcher.attribute_report)
    await app.startup(auto_form=False)
    try:
        await wait_for(
            lambda: watcher.reports, 60, f"no attribute report; messages {watcher.by_cluster}"
        )
        result, failed = await endpoint.in_clusters[BASIC_CLUSTER].read_attributes(
            ["model", "manufacturer"]
        )
        await wait_for(lambda: os.path.exists(stop_file), 300, "never told to stop")
        print(
            json.dumps(
                {
                    "reports": len(watcher.reports),
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
