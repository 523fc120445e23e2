"""Starts unmodified zigpy + bellows against an EZSP port the way Home Assistant's ZHA does:
start-up (forming the network when the stick is empty), a full network backup with devices,
permit joining, shutdown. Prints one JSON line with what the host learned.

Usage: python zigpy_start.py /dev/pts/N
Exit status 0 only if every step succeeded. Used by tests/it/sim.rs (zigbee-otad simulate).
"""

import asyncio
import json
import logging
import sys

import bellows.zigbee.application
import zigpy.config


async def main(path: str) -> int:
    config = {
        zigpy.config.CONF_DEVICE: {zigpy.config.CONF_DEVICE_PATH: path},
        zigpy.config.CONF_DATABASE: None,
        zigpy.config.CONF_STARTUP_ENERGY_SCAN: False,
        zigpy.config.CONF_NWK_BACKUP_ENABLED: False,
        zigpy.config.CONF_TOPO_SCAN_ENABLED: False,
        zigpy.config.CONF_OTA: {zigpy.config.CONF_OTA_ENABLED: False},
    }
    app = await bellows.zigbee.application.ControllerApplication.new(
        config, auto_form=True, start_radio=True
    )
    try:
        backup = await app.backups.create_backup(load_devices=True)
        await app.permit(0)
        info = backup.network_info
        node = backup.node_info
        print(
            json.dumps(
                {
                    "ieee": str(node.ieee),
                    "nwk": f"0x{node.nwk:04X}",
                    "pan_id": f"0x{info.pan_id:04X}",
                    "extended_pan_id": str(info.extended_pan_id),
                    "channel": info.channel,
                    "network_key": info.network_key.key.serialize().hex(),
                    "children": sorted(str(c) for c in info.children),
                    "ezsp_version": app._ezsp.ezsp_version,
                }
            )
        )
    finally:
        await app.shutdown()
    return 0


if __name__ == "__main__":
    if "-v" in sys.argv:
        logging.basicConfig(level=logging.DEBUG)
    sys.exit(asyncio.run(main(sys.argv[1])))
