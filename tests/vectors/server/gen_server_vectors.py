#!/usr/bin/env python3
"""Generates tests/vectors/server/server_vectors.json: OTA request/response exchanges encoded by
zigpy, for checking that the zigbee-otad server answers byte-for-byte as zigpy frames the same
commands.

The scenario is fixed (the Rust test builds the same one):
- image A: manufacturer 0x1189, type 0x0042, version 0x02000000, bytes = bytes(range(256)) * 4;
- image B, a device-specific file: manufacturer 0x1189, type 0xFFC0, version 5,
  destination 00:11:22:33:44:55:66:77, bytes = bytes(range(200));
- the device 00:11:22:33:44:55:66:77 runs version 0x01000000;
- the download cap is 1: once the device holds the slot, a second device
  00:00:00:00:00:00:00:99 asking for a block is told WAIT_FOR_DATA (10 s: the holder has moved
  one block since its slot was granted, and the slot progress rule judges it at the end of its
  10 s window, when the slot may be free).

Each vector is one request (client to server, as a device frames it: cluster-specific, DDR off)
and the response zigpy would send for it: server-to-client with Default Response disabled, the
request's TSN, payload from zigpy's own schemas (`Ota.ClientCommandDefs`, the global Default
Response). Requests are framed with `Ota.ServerCommandDefs`.

Run with a Python that has zigpy installed:
    python3 tests/vectors/server/gen_server_vectors.py > tests/vectors/server/server_vectors.json
"""

import json
from importlib.metadata import version

import zigpy.types as t
from zigpy.zcl import foundation
from zigpy.zcl.clusters.general import Ota

C2S = foundation.Direction.Client_to_Server
S2C = foundation.Direction.Server_to_Client
Status = foundation.Status

MFR, TYPE, NEW, OLD = 0x1189, 0x0042, 0x02000000, 0x01000000
IMAGE_A = bytes(range(256)) * 4
SPECIFIC_TYPE, SPECIFIC_VERSION = 0xFFC0, 5
IMAGE_B = bytes(range(200))
DEVICE = t.EUI64.convert("00:11:22:33:44:55:66:77")


def header(tsn, command_id, direction, general=False, ddr=None):
    frame_control = foundation.FrameControl(
        frame_type=(
            foundation.FrameType.GLOBAL_COMMAND if general else foundation.FrameType.CLUSTER_COMMAND
        ),
        is_manufacturer_specific=False,
        direction=direction,
        # zigpy's reply() disables default responses; a device's request leaves them on.
        disable_default_response=(direction == S2C) if ddr is None else ddr,
        reserved=0b000,
    )
    return foundation.ZCLHeader(frame_control=frame_control, tsn=tsn, command_id=command_id)


def request(tsn, name, **fields):
    command = getattr(Ota.ServerCommandDefs, name)
    return (header(tsn, command.id, C2S).serialize() + command.schema(**fields).serialize()).hex()


def response(tsn, name, **fields):
    command = getattr(Ota.ClientCommandDefs, name)
    return (header(tsn, command.id, S2C).serialize() + command.schema(**fields).serialize()).hex()


def default_response(tsn, command_id, status):
    command = foundation.GENERAL_COMMANDS[foundation.GeneralCommand.Default_Response]
    payload = command.schema(command_id=command_id, status=status).serialize()
    return (header(tsn, command.id, S2C, general=True).serialize() + payload).hex()


def block(offset, size):
    return dict(
        status=Status.SUCCESS,
        manufacturer_code=MFR,
        image_type=TYPE,
        file_version=NEW,
        file_offset=offset,
        image_data=IMAGE_A[offset : offset + size],
    )


def block_request(tsn, offset, max_size, version=NEW, ieee=None, period=None):
    field_control = 0
    extra = {}
    if ieee is not None:
        field_control |= 0b01
        extra["request_node_addr"] = ieee
    if period is not None:
        field_control |= 0b10
        extra["minimum_block_period"] = period
    return request(
        tsn,
        "image_block",
        field_control=field_control,
        manufacturer_code=MFR,
        image_type=TYPE,
        file_version=version,
        file_offset=offset,
        maximum_data_size=max_size,
        **extra,
    )


def query(tsn, manufacturer=MFR, hardware=None):
    fields = dict(
        field_control=0 if hardware is None else 1,
        manufacturer_code=manufacturer,
        image_type=TYPE,
        current_file_version=OLD,
    )
    if hardware is not None:
        fields["hardware_version"] = hardware
    return request(tsn, "query_next_image", **fields)


def upgrade_end(tsn, status):
    return request(
        tsn, "upgrade_end", status=status, manufacturer_code=MFR, image_type=TYPE, file_version=NEW
    )


offer = dict(
    status=Status.SUCCESS,
    manufacturer_code=MFR,
    image_type=TYPE,
    file_version=NEW,
    image_size=len(IMAGE_A),
)

vectors = [
    # Requests in this order, from the one device unless `device` says otherwise.
    dict(name="query_offers_image", request=query(0x10), response=response(0x10, "query_next_image_response", **offer)),
    dict(name="query_with_hardware_version", request=query(0x11, hardware=0x0102), response=response(0x11, "query_next_image_response", **offer)),
    dict(name="query_other_manufacturer_no_image", request=query(0x12, manufacturer=0x1234), response=response(0x12, "query_next_image_response", status=Status.NO_IMAGE_AVAILABLE)),
    dict(name="block_first_capped_at_50", request=block_request(0x20, 0, 64), response=response(0x20, "image_block_response", **block(0, 50))),
    dict(name="block_over_cap_wait_for_data", device="second", request=block_request(0x25, 0, 64, period=0), response=response(0x25, "image_block_response", status=Status.WAIT_FOR_DATA, current_time=0, request_time=10, minimum_block_period=0)),
    dict(name="block_last_short", request=block_request(0x21, 1000, 64), response=response(0x21, "image_block_response", **block(1000, 24))),
    dict(name="block_with_ieee_and_period", request=block_request(0x22, 100, 40, ieee=DEVICE, period=0), response=response(0x22, "image_block_response", **block(100, 40))),
    dict(name="block_past_end_malformed", request=block_request(0x23, 1024, 64), response=response(0x23, "image_block_response", status=Status.MALFORMED_COMMAND)),
    dict(name="block_other_file_abort", request=block_request(0x24, 0, 64, version=NEW + 1), response=response(0x24, "image_block_response", status=Status.ABORT)),
    dict(name="upgrade_end_success", request=upgrade_end(0x30, Status.SUCCESS), response=response(0x30, "upgrade_end_response", manufacturer_code=MFR, image_type=TYPE, file_version=NEW, current_time=0, upgrade_time=0)),
    dict(name="upgrade_end_invalid_image_default_response", request=upgrade_end(0x31, Status.INVALID_IMAGE), response=default_response(0x31, 0x06, Status.SUCCESS)),
    dict(name="query_specific_file", request=request(0x40, "query_specific_file", request_node_addr=DEVICE, manufacturer_code=MFR, image_type=SPECIFIC_TYPE, file_version=1, current_zigbee_stack_version=2), response=response(0x40, "query_specific_file_response", status=Status.SUCCESS, manufacturer_code=MFR, image_type=SPECIFIC_TYPE, file_version=SPECIFIC_VERSION, image_size=len(IMAGE_B))),
    dict(name="unknown_command_unsup", request=(header(0x50, 0x0A, C2S).serialize() + b"\x00").hex(), response=default_response(0x50, 0x0A, Status.UNSUP_CLUSTER_COMMAND)),
]

notify = Ota.ClientCommandDefs.image_notify
image_notify = (
    header(0, notify.id, S2C).serialize()
    + notify.schema(
        payload_type=Ota.ImageNotifyCommand.PayloadType.QueryJitter, query_jitter=100
    ).serialize()
).hex()

print(
    json.dumps(
        {
            "generator": f"zigpy {version('zigpy')}",
            "image_a": IMAGE_A.hex(),
            "image_b": IMAGE_B.hex(),
            "exchanges": vectors,
            "image_notify_unicast_tsn0": image_notify,
        },
        indent=1,
    )
)
