"""Starts unmodified zigpy + zigpy-znp's ControllerApplication on PORT the way Home Assistant's
ZHA does (auto_form=False: the stick must already hold a network), then prints what it read as
one JSON line and shuts down. Used by tests/it/znp_ref.rs against `simulate --protocol znp`.

    python tests/interop/zigpy_znp_start.py /dev/pts/N DATABASE
"""

import asyncio
import json
import sys

import zigpy.config as conf
import zigpy_znp.zigbee.application


async def main(port: str, database: str) -> None:
    config = {
        conf.CONF_DEVICE: {conf.CONF_DEVICE_PATH: port, conf.CONF_DEVICE_BAUDRATE: 115200},
        conf.CONF_DATABASE: database,
        conf.CONF_OTA: {conf.CONF_OTA_ENABLED: False},
        conf.CONF_NWK_BACKUP_ENABLED: False,
        conf.CONF_TOPO_SCAN_ENABLED: False,
    }
    app = await zigpy_znp.zigbee.application.ControllerApplication.new(
        config, auto_form=False, start_radio=True
    )
    try:
        coordinator = app._device
        endpoints = {
            str(ep_id): {
                "profile": ep.profile_id,
                "in": sorted(ep.in_clusters),
                "out": sorted(ep.out_clusters),
            }
            for ep_id, ep in coordinator.endpoints.items()
            if ep_id != 0
        }
        print(
            json.dumps(
                {
                    "ieee": str(app.state.node_info.ieee),
                    "nwk": int(app.state.node_info.nwk),
                    "channel": app.state.network_info.channel,
                    "pan_id": int(app.state.network_info.pan_id),
                    "extended_pan_id": str(app.state.network_info.extended_pan_id),
                    "coordinator_initialized": coordinator.is_initialized,
                    "manufacturer_code": coordinator.node_desc.manufacturer_code
                    if coordinator.node_desc
                    else None,
                    "endpoints": endpoints,
                }
            ),
            flush=True,
        )
    finally:
        await app.shutdown()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
