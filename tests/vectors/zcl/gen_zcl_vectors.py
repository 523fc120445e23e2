#!/usr/bin/env python3
"""Generates tests/vectors/zcl/zcl_vectors.json: ZCL OTA-cluster frames serialised by zigpy.

Every OTA command 0x00-0x09 in both directions, each optional-field combination, the SUCCESS,
WAIT_FOR_DATA, ABORT and other-status forms of the Image Block Response, and the global Default
Response. Each vector holds the frame bytes (ZCL header + payload, as hex) and the field values
zigpy serialised, so the Rust tests can check both ways: decode(hex) gives the fields, and
encoding the fields gives hex.

Run with a Python that has zigpy installed:
    python3 tests/vectors/zcl/gen_zcl_vectors.py > tests/vectors/zcl/zcl_vectors.json
"""

import json
import sys
from importlib.metadata import version

import zigpy.types as t
from zigpy.zcl import foundation
from zigpy.zcl.clusters.general import Ota

C2S = foundation.Direction.Client_to_Server
S2C = foundation.Direction.Server_to_Client
Status = foundation.Status

IEEE = "00:0d:6f:00:00:19:8b:36"


def plain(value):
    """Field value as JSON: ints as ints, EUI64 in zigpy's colon form, bytes as hex."""
    if isinstance(value, t.EUI64):
        return repr(value)
    if isinstance(value, bytes):
        return value.hex()
    return int(value)


def frame(name, header, schema, fields, note=""):
    payload = schema(**fields).serialize()
    data = header.serialize() + payload
    # Check that zigpy reads its own bytes back to the same fields.
    decoded, rest = schema.deserialize(payload)
    assert not rest, name
    for key, value in fields.items():
        assert plain(getattr(decoded, key)) == plain(value), (name, key)
    return {
        "name": name,
        "command": schema.command.name if hasattr(schema, "command") else schema.__name__,
        "frame_control": int(header.frame_control),
        "manufacturer_code": None if header.manufacturer is None else int(header.manufacturer),
        "tsn": int(header.tsn),
        "command_id": int(header.command_id),
        "fields": {key: plain(value) for key, value in fields.items()},
        "hex": data.hex(),
        "note": note,
    }


def cluster(tsn, command, direction, manufacturer=None):
    return foundation.ZCLHeader.cluster(
        tsn=tsn, command_id=command.id, manufacturer=manufacturer, direction=direction
    )


def main():
    server = Ota.ServerCommandDefs  # received by the server: client to server
    client = Ota.ClientCommandDefs  # received by the client: server to client
    vectors = []
    add = vectors.append

    # 0x00 Image Notify, payload types 0-3.
    notify = client.image_notify.schema
    add(frame("image_notify_type0", cluster(0x10, client.image_notify, S2C), notify,
              {"payload_type": 0, "query_jitter": 100}))
    add(frame("image_notify_type1", cluster(0x11, client.image_notify, S2C), notify,
              {"payload_type": 1, "query_jitter": 50, "manufacturer_code": 0x117C}))
    add(frame("image_notify_type2", cluster(0x12, client.image_notify, S2C), notify,
              {"payload_type": 2, "query_jitter": 1, "manufacturer_code": 0x100B,
               "image_type": 0x011D}))
    add(frame("image_notify_type3", cluster(0x13, client.image_notify, S2C), notify,
              {"payload_type": 3, "query_jitter": 15, "manufacturer_code": 0x1021,
               "image_type": 0x0011, "new_file_version": 0x005A4203}))

    # 0x01 Query Next Image Request, with and without the hardware version.
    query = server.query_next_image.schema
    add(frame("query_next_image", cluster(0x20, server.query_next_image, C2S), query,
              {"field_control": 0, "manufacturer_code": 0x1021, "image_type": 0x0011,
               "current_file_version": 0x00534300}))
    add(frame("query_next_image_hw", cluster(0x21, server.query_next_image, C2S), query,
              {"field_control": 1, "manufacturer_code": 0x1168, "image_type": 0x030F,
               "current_file_version": 0x21000006, "hardware_version": 0x0102}))

    # 0x02 Query Next Image Response.
    qrsp = client.query_next_image_response.schema
    add(frame("query_next_image_response_success",
              cluster(0x20, client.query_next_image_response, S2C), qrsp,
              {"status": Status.SUCCESS, "manufacturer_code": 0x10F2, "image_type": 0x7B32,
               "file_version": 0x02600460, "image_size": 150014}))
    for status in (Status.NO_IMAGE_AVAILABLE, Status.NOT_AUTHORIZED):
        add(frame(f"query_next_image_response_{status.name.lower()}",
                  cluster(0x21, client.query_next_image_response, S2C), qrsp,
                  {"status": status}))

    # 0x03 Image Block Request, field control 0-3.
    block = server.image_block.schema
    base = {"manufacturer_code": 0x117C, "image_type": 0x4204, "file_version": 0x20029623,
            "file_offset": 208214, "maximum_data_size": 63}
    add(frame("image_block", cluster(0x30, server.image_block, C2S), block,
              {"field_control": 0, **base}))
    add(frame("image_block_ieee", cluster(0x31, server.image_block, C2S), block,
              {"field_control": 1, **base, "request_node_addr": t.EUI64.convert(IEEE)}))
    add(frame("image_block_min_period", cluster(0x32, server.image_block, C2S), block,
              {"field_control": 2, **base, "minimum_block_period": 20}))
    add(frame("image_block_ieee_min_period", cluster(0x33, server.image_block, C2S), block,
              {"field_control": 3, **base, "request_node_addr": t.EUI64.convert(IEEE),
               "minimum_block_period": 0xFFFF}))

    # 0x04 Image Page Request, with and without the IEEE address.
    page = server.image_page.schema
    page_base = {**base, "page_size": 1024, "response_spacing": 100}
    add(frame("image_page", cluster(0x40, server.image_page, C2S), page,
              {"field_control": 0, **page_base}))
    add(frame("image_page_ieee", cluster(0x41, server.image_page, C2S), page,
              {"field_control": 1, **page_base, "request_node_addr": t.EUI64.convert(IEEE)}))

    # 0x05 Image Block Response: SUCCESS (0, 1, 50 and 254 data bytes; zigpy's octet string
    # refuses 255), WAIT_FOR_DATA, ABORT and another status.
    brsp = client.image_block_response.schema
    image = {"manufacturer_code": 0x10F2, "image_type": 0x7B32, "file_version": 0x02600460}
    for size in (0, 1, 50, 254):
        data = bytes((i * 7 + 3) & 0xFF for i in range(size))
        add(frame(f"image_block_response_success_{size}",
                  cluster(0x50, client.image_block_response, S2C), brsp,
                  {"status": Status.SUCCESS, **image, "file_offset": 50 * size,
                   "image_data": t.LVBytes(data)}))
    add(frame("image_block_response_wait_for_data",
              cluster(0x51, client.image_block_response, S2C), brsp,
              {"status": Status.WAIT_FOR_DATA, "current_time": 0, "request_time": 60,
               "minimum_block_period": 250},
              "zigpy always writes the minimum block period; its absence is a unit test"))
    add(frame("image_block_response_wait_for_data_utc",
              cluster(0x52, client.image_block_response, S2C), brsp,
              {"status": Status.WAIT_FOR_DATA, "current_time": 0x2E8F_2D00,
               "request_time": 0x2E8F_2D3C, "minimum_block_period": 0}))
    add(frame("image_block_response_abort", cluster(0x53, client.image_block_response, S2C),
              brsp, {"status": Status.ABORT}))
    add(frame("image_block_response_malformed",
              cluster(0x54, client.image_block_response, S2C), brsp,
              {"status": Status.MALFORMED_COMMAND},
              "zigpy answers a block request past the end of the image with this"))

    # 0x06 Upgrade End Request, the four allowed statuses.
    end = server.upgrade_end.schema
    for status in (Status.SUCCESS, Status.INVALID_IMAGE, Status.REQUIRE_MORE_IMAGE,
                   Status.ABORT):
        add(frame(f"upgrade_end_{status.name.lower()}", cluster(0x60, server.upgrade_end, C2S),
                  end, {"status": status, "manufacturer_code": 0x7777, "image_type": 0x0011,
                        "file_version": 0x00009999}))

    # 0x07 Upgrade End Response: relative now, absolute, and "wait for a later one".
    ersp = client.upgrade_end_response.schema
    for name, current, upgrade in (("now", 0, 0), ("absolute", 0x12345, 0x1234A),
                                   ("wait", 0, 0xFFFFFFFF)):
        add(frame(f"upgrade_end_response_{name}",
                  cluster(0x61, client.upgrade_end_response, S2C), ersp,
                  {"manufacturer_code": 0x7777, "image_type": 0x0011,
                   "file_version": 0x00009999, "current_time": current,
                   "upgrade_time": upgrade}))

    # 0x08 / 0x09 Query Device Specific File.
    qdsf = server.query_specific_file.schema
    add(frame("query_specific_file", cluster(0x70, server.query_specific_file, C2S), qdsf,
              {"request_node_addr": t.EUI64.convert(IEEE), "manufacturer_code": 0x117C,
               "image_type": 0xFFC0, "file_version": 1, "current_zigbee_stack_version": 2}))
    qdsr = client.query_specific_file_response.schema
    add(frame("query_specific_file_response_success",
              cluster(0x70, client.query_specific_file_response, S2C), qdsr,
              {"status": Status.SUCCESS, "manufacturer_code": 0x117C, "image_type": 0xFFC0,
               "file_version": 1, "image_size": 4096}))
    add(frame("query_specific_file_response_unsupported",
              cluster(0x71, client.query_specific_file_response, S2C), qdsr,
              {"status": Status.UNSUP_CLUSTER_COMMAND}))

    # Global Default Response in both directions, and with a manufacturer code.
    default = foundation.GENERAL_COMMANDS[foundation.GeneralCommand.Default_Response].schema
    dr = foundation.GeneralCommand.Default_Response
    add(frame("default_response_from_client",
              foundation.ZCLHeader.general(0x05, dr, direction=C2S), default,
              {"command_id": 0x05, "status": Status.SUCCESS}))
    add(frame("default_response_from_server",
              foundation.ZCLHeader.general(0x06, dr, direction=S2C), default,
              {"command_id": 0x03, "status": Status.MALFORMED_COMMAND}))
    add(frame("default_response_manufacturer_specific",
              foundation.ZCLHeader.general(0x07, dr, manufacturer=0x117C, direction=S2C),
              default, {"command_id": 0x01, "status": Status.UNSUP_CLUSTER_COMMAND}))

    # A client request with Default Response disabled (zigpy's helper only sets it on
    # server-to-client frames, so build the frame control by hand).
    fc = foundation.FrameControl.cluster(direction=C2S).replace(disable_default_response=1)
    add(frame("image_block_ddr", foundation.ZCLHeader(frame_control=fc, tsn=0x34,
                                                       command_id=server.image_block.id),
              block, {"field_control": 0, **base}))

    json.dump({
        "generator": "tests/vectors/zcl/gen_zcl_vectors.py",
        "zigpy_version": version("zigpy"),
        "vectors": vectors,
    }, sys.stdout, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
