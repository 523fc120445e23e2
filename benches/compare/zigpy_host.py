"""The reference host for the side-by-side benchmark: unmodified zigpy + bellows (or zigpy +
zigpy-znp, `--radio znp`) serving OTA images from a local folder to the simulated devices, the
way ZHA drives zigpy's OTA code.

    python zigpy_host.py --port /dev/pts/N --images DIR --devices devices.json --database DB
    python zigpy_host.py --radio znp --port /dev/pts/N ...   # the simulated Z-Stack stick

Started by `benches/daemon_scale.rs --host zigpy` (through `benches/compare/run.sh`), which
measures this process from outside. Nothing in zigpy or bellows is patched.

What it does, and why:

1. Starts bellows' (or zigpy-znp's) ControllerApplication on the pty (115200 baud, no flow
   control), with the
   OTA manager enabled and one provider: zigpy's "advanced" local-folder provider on DIR. No
   network providers, no periodic broadcasts, no backups, no topology scan.
2. Puts the simulated devices into zigpy's device table as already-paired devices: node
   descriptor, endpoint 1 (HA profile) with Basic as input and OTA Upgrade as output cluster,
   manufacturer and model names. zigpy would otherwise interview a newly announced device
   over ZDO, which the simulated devices do not answer (they implement only the OTA client).
   This is the state a real device is in after pairing.
3. zigpy (2.x) does not upgrade devices by itself: a device's Query Next Image is answered
   NO_IMAGE_AVAILABLE, the query is cached, and zigpy checks its providers and emits
   `ota_image_available` on the device's OTA cluster. ZHA shows that as an update entity and
   calls `ZigbeeDevice.update_firmware` when the user installs it. This script does what ZHA
   does with auto-update: on that event it calls `device.update_firmware`, which sends Image
   Notify; the device queries again and zigpy's OTAManager serves the blocks.
4. `tolerate_simulator_gaps` (bellows only, start-up only, see there) answers the few
   EmberZNet commands the simulated NCP does not implement; the OTA data path is never
   touched. zigpy-znp needs no shim: the simulated Z-Stack stick answers everything it sends.
"""

import argparse
import asyncio
import json
import logging
import pathlib
import sys

import zigpy.config as conf
import zigpy.endpoint
import zigpy.types as t
import zigpy.zdo.types as zdo_t
from zigpy.profiles import zha
from zigpy.zcl import OtaImageAvailableEvent
from zigpy.zcl.clusters.general import Basic, Ota

LOGGER = logging.getLogger("zigpy_host")


# EZSP commands on the OTA data path: never answered by the shim below.
DATA_PATH_COMMANDS = {"sendUnicast", "sendBroadcast", "sendMulticast"}


def tolerate_simulator_gaps() -> None:
    """Start-up shim, outside the OTA data path. The simulated NCP implements what an OTA
    server needs, not all of EmberZNet: bellows' start-up also sends commands it refuses with
    invalidCommand (`exportKey` for its network backup, `setConcentrator`, ...). For those, and
    only when the NCP refuses them, this answers the command locally with the all-zero response
    (SUCCESS status, zero values) and notes it on stderr, instead of failing the start-up.
    `sendUnicast`, `sendBroadcast` and `sendMulticast` are never answered locally: every frame
    of the OTA exchange is built, sent and acknowledged through zigpy and bellows unmodified."""
    import bellows.exception
    import bellows.ezsp.protocol
    import bellows.ezsp.v13
    import zigpy.exceptions
    import zigpy.state

    original_command = bellows.ezsp.protocol.ProtocolHandler.command

    async def command(self, name, *args, **kwargs):
        try:
            return await original_command(self, name, *args, **kwargs)
        except bellows.exception.InvalidCommandError:
            if name in DATA_PATH_COMMANDS:
                raise
            _, _, rx_schema = self.COMMANDS[name]
            zeros = bytes(256)
            answer = [kind.deserialize(zeros)[0] for kind in rx_schema.values()]
            print(f"shim: the simulated NCP refused {name}; answered locally", file=sys.stderr)
            return answer

    bellows.ezsp.protocol.ProtocolHandler.command = command

    # The network key is read once for backups; an all-zero "not set" answer would stop start-up.
    for name in ("get_network_key", "get_tc_link_key"):
        original = getattr(bellows.ezsp.v13.EZSPv13, name)

        async def with_placeholder(self, original=original):
            try:
                return await original(self)
            except (bellows.exception.InvalidCommandError, zigpy.exceptions.NetworkNotFormed):
                return zigpy.state.Key(key=t.KeyData(b"ZigBeeAlliance09"))

        setattr(bellows.ezsp.v13.EZSPv13, name, with_placeholder)


def register_device(app, ieee: str, nwk: int, manufacturer_code: int):
    """Adds one simulated device as an already-interviewed, paired device."""
    device = app.add_device(t.EUI64.convert(ieee), t.NWK(nwk))
    device.node_desc = zdo_t.NodeDescriptor(
        logical_type=zdo_t.LogicalType.Router,
        complex_descriptor_available=0,
        user_descriptor_available=0,
        reserved=0,
        aps_flags=0,
        frequency_band=zdo_t.NodeDescriptor.FrequencyBand.Freq2400MHz,
        mac_capability_flags=zdo_t.NodeDescriptor.MACCapabilityFlags.AllocateAddress
        | zdo_t.NodeDescriptor.MACCapabilityFlags.RxOnWhenIdle
        | zdo_t.NodeDescriptor.MACCapabilityFlags.MainsPowered
        | zdo_t.NodeDescriptor.MACCapabilityFlags.FullFunctionDevice,
        manufacturer_code=manufacturer_code,
        maximum_buffer_size=82,
        maximum_incoming_transfer_size=82,
        server_mask=0,
        maximum_outgoing_transfer_size=82,
        descriptor_capability_field=zdo_t.NodeDescriptor.DescriptorCapability(0),
    )
    endpoint = device.add_endpoint(1)
    endpoint.profile_id = zha.PROFILE_ID
    endpoint.device_type = zha.DeviceType.ON_OFF_LIGHT
    endpoint.add_input_cluster(Basic.cluster_id)
    endpoint.add_output_cluster(Ota.cluster_id)
    endpoint.status = zigpy.endpoint.Status.ZDO_INIT
    device.manufacturer = "LEDVANCE"
    device.model = "zigbee-otad benchmark device"
    app.device_initialized(device)
    return device


async def upgrade(device, event: OtaImageAvailableEvent, started: set) -> None:
    """What ZHA's update entity does on install: serve the best upgrade with OTAManager."""
    if device.ieee in started or not event.images_result.upgrades:
        return
    started.add(device.ieee)
    image = event.images_result.upgrades[0]
    status = await device.update_firmware(image)
    print(f"{device.ieee} {device.nwk} upgrade ended: {status!r}", flush=True)


async def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", required=True)
    parser.add_argument("--images", required=True, type=pathlib.Path)
    parser.add_argument("--devices", required=True, type=pathlib.Path)
    parser.add_argument("--database", required=True)
    parser.add_argument("--debug", action="store_true")
    parser.add_argument("--radio", choices=("bellows", "znp"), default="bellows")
    args = parser.parse_args()
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING)

    spec = json.loads(args.devices.read_text())
    if args.radio == "znp":
        import zigpy_znp.zigbee.application

        controller = zigpy_znp.zigbee.application.ControllerApplication
    else:
        import bellows.zigbee.application

        tolerate_simulator_gaps()
        controller = bellows.zigbee.application.ControllerApplication
    config = {
        conf.CONF_DEVICE: {
            conf.CONF_DEVICE_PATH: args.port,
            conf.CONF_DEVICE_BAUDRATE: 115200,
            conf.CONF_DEVICE_FLOW_CONTROL: None,
        },
        conf.CONF_DATABASE: args.database,
        conf.CONF_OTA: {
            conf.CONF_OTA_ENABLED: True,
            conf.CONF_OTA_BROADCAST_ENABLED: False,
            conf.CONF_OTA_PROVIDERS: [
                {
                    conf.CONF_OTA_PROVIDER_TYPE: "advanced",
                    conf.CONF_OTA_PROVIDER_PATH: str(args.images),
                    conf.CONF_OTA_PROVIDER_WARNING: conf.CONF_OTA_ALLOW_ADVANCED_DIR_STRING,
                }
            ],
        },
        conf.CONF_NWK_BACKUP_ENABLED: False,
        conf.CONF_TOPO_SCAN_ENABLED: False,
    }
    app = await controller.new(
        config, auto_form=False, start_radio=True
    )
    print(f"zigpy started on {args.port}", flush=True)

    started: set = set()
    tasks: set = set()
    for entry in spec["devices"]:
        device = register_device(
            app, entry["ieee"], entry["nwk"], spec["manufacturer_code"]
        )
        cluster = device.endpoints[1].out_clusters[Ota.cluster_id]

        def on_available(event, device=device):
            task = asyncio.create_task(upgrade(device, event, started))
            tasks.add(task)
            task.add_done_callback(tasks.discard)

        cluster.on_event(OtaImageAvailableEvent.event_type, on_available)
    print(f"registered {len(spec['devices'])} devices", flush=True)

    try:
        await asyncio.Event().wait()
    finally:
        await app.shutdown()
    return 0


if __name__ == "__main__":
    try:
        sys.exit(asyncio.run(main()))
    except KeyboardInterrupt:
        sys.exit(0)
