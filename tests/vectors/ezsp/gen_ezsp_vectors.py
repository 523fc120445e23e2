#!/usr/bin/env python3
"""Generates tests/vectors/ezsp/bellows_vectors.json with bellows (1.2.1), the reference EZSP host.

Run from the repository root with a Python environment that has bellows installed:

    python tests/vectors/ezsp/gen_ezsp_vectors.py > tests/vectors/ezsp/bellows_vectors.json

For each protocol version (8-14, 16, 17; bellows has no v15 module, and v15 is laid out as
v14) and each message the project uses:
- commands are serialized by bellows' own `EZSPvN._ezsp_frame(name, *args)`;
- responses and callbacks are serialized with bellows' types from the version's schema, then fed
  through bellows' frame handler (`EZSPvN.__call__`), which must hand back the same values, and
  re-serializing them must give the same bytes (no trailing or missing data).

Each record: version, direction (command / response / callback), name, sequence, frame (hex) and
args (the values, JSON-friendly: ints, hex strings for bytes, EUI-64 as "00:11:..", structs as
objects) keyed by bellows' parameter names.
"""

import importlib
import json
import sys

import bellows.types as t
import zigpy.types as zt

VERSIONS = (8, 9, 10, 11, 12, 13, 14, 16, 17)

EUI = "00:11:22:33:44:55:66:77"
EXT_PAN = "01:23:45:67:89:ab:cd:ef"
ZCL_IMAGE_NOTIFY = bytes.fromhex("1910000064")
ZCL_QUERY_NEXT_IMAGE = bytes.fromhex("012101005f11010010000000")
ZDO_DEVICE_ANNOUNCE = bytes.fromhex("81341277665544332211008e")


def aps(profile=0x0104, cluster=0x0019, src=1, dst=1, options=0x0140, group=0, seq=0x10):
    return t.EmberApsFrame(
        profileId=profile,
        clusterId=cluster,
        sourceEndpoint=src,
        destinationEndpoint=dst,
        options=t.EmberApsOption(options),
        groupId=group,
        sequence=seq,
    )


NETWORK_PARAMETERS = t.EmberNetworkParameters(
    extendedPanId=t.ExtendedPanId.convert(EXT_PAN),
    panId=0x1A62,
    radioTxPower=8,
    radioChannel=15,
    joinMethod=t.EmberJoinMethod.USE_MAC_ASSOCIATION,
    nwkManagerId=0x0000,
    nwkUpdateId=0,
    channels=t.Channels(0x07FFF800),
)

SECURITY_STATE = t.EmberInitialSecurityState(
    bitmask=t.EmberInitialSecurityBitmask(0x0004 | 0x0008 | 0x0100 | 0x0200 | 0x1000),
    preconfiguredKey=t.KeyData(bytes(range(0x10, 0x20))),
    networkKey=t.KeyData(bytes(range(0xA0, 0xB0))),
    networkKeySequenceNumber=0,
    preconfiguredTrustCenterEui64=t.EUI64.convert(EUI),
)


def status(version, ember_or_ezsp):
    """The status in the version's type: one byte before v14, sl_status_t after."""
    if version >= 14:
        return t.sl_Status.from_ember_status(ember_or_ezsp)
    return ember_or_ezsp


def jsonable(value):
    if isinstance(value, (t.EUI64, zt.EUI64)):
        return str(value)
    if isinstance(value, (bytes, bytearray)):
        return value.hex()
    if isinstance(value, zt.Struct):
        return {f.name: jsonable(getattr(value, f.name)) for f in value.fields}
    if isinstance(value, (list, tuple)):
        if value and all(isinstance(x, int) for x in value) and type(value).__name__ == "KeyData":
            return bytes(value).hex()
        return [jsonable(x) for x in value]
    if isinstance(value, int):
        return int(value)
    raise TypeError(f"cannot express {value!r} ({type(value)}) as JSON")


def commands(version):
    """(name, args) for each command, in the version's parameter order."""
    v14 = version >= 14
    out = [
        ("version", [version]),
        ("getConfigurationValue", [t.EzspConfigId.CONFIG_STACK_PROFILE]),
        ("setConfigurationValue", [t.EzspConfigId.CONFIG_PACKET_BUFFER_COUNT, 255]),
        ("getValue", [t.EzspValueId.VALUE_VERSION_INFO]),
        ("setValue", [t.EzspValueId.VALUE_ENDPOINT_FLAGS, t.LVBytes(b"\x01\x01")]),
        ("setPolicy", [t.EzspPolicyId.MESSAGE_CONTENTS_IN_CALLBACK_POLICY,
                       t.EzspDecisionId.MESSAGE_TAG_ONLY_IN_CALLBACK]),
        ("addEndpoint", [1, 0x0104, 0x0005, 0, 6, 1,
                         [0x0000, 0x0006, 0x000A, 0x0019, 0x0025, 0x0501], [0x0019]]),
        ("networkInit", [t.EmberNetworkInitBitmask(0)]),
        ("networkState", []),
        ("formNetwork", [NETWORK_PARAMETERS]),
        ("permitJoining", [60]),
        ("getNetworkParameters", []),
        ("getEui64", []),
        ("getNodeId", []),
        ("maximumPayloadLength", []),
        ("lookupNodeIdByEui64", [t.EUI64.convert(EUI)]),
        ("lookupEui64ByNodeId", [0x1234]),
        ("setInitialSecurityState", [SECURITY_STATE]),
        ("nop", []),
    ]
    if v14:
        out += [
            ("sendUnicast", [t.EmberOutgoingMessageType.OUTGOING_DIRECT, 0x1234, aps(),
                             0x1242, t.LVBytes(ZCL_IMAGE_NOTIFY)]),
            ("sendBroadcast", [0xFFFF, 0xFFFD, 0, aps(dst=0xFF, options=0), 0, 0x0143,
                               t.LVBytes(ZCL_IMAGE_NOTIFY)]),
        ]
    else:
        out += [
            ("sendUnicast", [t.EmberOutgoingMessageType.OUTGOING_DIRECT, 0x1234, aps(),
                             0x42, t.LVBytes(ZCL_IMAGE_NOTIFY)]),
            ("sendBroadcast", [0xFFFD, aps(dst=0xFF, options=0), 0, 0x43,
                               t.LVBytes(ZCL_IMAGE_NOTIFY)]),
        ]
    return out


def responses(version):
    s = lambda x: status(version, x)  # noqa: E731
    ok = s(t.EmberStatus.SUCCESS)
    ezsp_ok = s(t.EzspStatus.SUCCESS)
    out = [
        ("version", [version, 2, 0x7440]),
        ("getConfigurationValue", [ezsp_ok, 2]),
        ("setConfigurationValue", [s(t.EzspStatus.ERROR_INVALID_ID)]),
        ("getValue", [ezsp_ok, t.LVBytes(bytes.fromhex("ac04070404000000"[: 14]))]),
        ("setValue", [ezsp_ok]),
        ("setPolicy", [ezsp_ok]),
        ("addEndpoint", [ezsp_ok]),
        ("networkInit", [s(t.EmberStatus.NOT_JOINED)]),
        ("networkState", [t.EmberNetworkStatus.JOINED_NETWORK]),
        ("formNetwork", [ok]),
        ("permitJoining", [ok]),
        ("getNetworkParameters", [ok, t.EmberNodeType.COORDINATOR, NETWORK_PARAMETERS]),
        ("getEui64", [t.EUI64.convert(EUI)]),
        ("getNodeId", [0x0000]),
        ("maximumPayloadLength", [82]),
        ("sendUnicast", [ok, 0x33]),
        ("sendBroadcast", [s(t.EmberStatus.NETWORK_BUSY), 0x34]),
        ("lookupEui64ByNodeId", [ok, t.EUI64.convert(EUI)]),
        ("setInitialSecurityState", [ok]),
        ("nop", []),
    ]
    if version >= 14:
        out.append(("lookupNodeIdByEui64", [ok, 0x1234]))
        out.append(("invalidCommand", [t.sl_Status.INVALID_PARAMETER]))
    else:
        out.append(("lookupNodeIdByEui64", [0x1234]))
        out.append(("invalidCommand", [t.EzspStatus.ERROR_INVALID_FRAME_ID]))
    return out


def callbacks(version):
    s = lambda x: status(version, x)  # noqa: E731
    eui = t.EUI64.convert(EUI)
    qnir = aps(options=0x0100, seq=0x33)
    annce = aps(profile=0x0000, cluster=0x0013, src=0, dst=0, options=0x0000, seq=0x81)
    out = [
        ("stackStatusHandler", [s(t.EmberStatus.NETWORK_UP)]),
        ("trustCenterJoinHandler", [0x1234, eui, t.EmberDeviceUpdate.STANDARD_SECURITY_UNSECURED_JOIN,
                                    t.EmberJoinDecision.USE_PRECONFIGURED_KEY, 0x0000]),
        ("childJoinHandler", [0, t.Bool.true, 0x1234, eui, t.EmberNodeType.END_DEVICE]),
    ]
    if version >= 14:
        out += [
            ("messageSentHandler", [s(t.EmberStatus.DELIVERY_FAILED),
                                    t.EmberOutgoingMessageType.OUTGOING_DIRECT, 0x1234, aps(), 0x1242,
                                    t.LVBytes(ZCL_IMAGE_NOTIFY)]),
            ("incomingMessageHandler", [t.EmberIncomingMessageType.INCOMING_UNICAST, qnir, 0x1234,
                                        eui, 0xFF, 0xFF, 0xFF, -40, 0x12345678,
                                        t.LVBytes(ZCL_QUERY_NEXT_IMAGE)]),
            ("incomingMessageHandler", [t.EmberIncomingMessageType.INCOMING_BROADCAST, annce, 0x1234,
                                        eui, 0xFF, 0xFF, 200, -62, 0,
                                        t.LVBytes(ZDO_DEVICE_ANNOUNCE)]),
        ]
    else:
        out += [
            ("messageSentHandler", [t.EmberOutgoingMessageType.OUTGOING_DIRECT, 0x1234, aps(), 0x42,
                                    s(t.EmberStatus.DELIVERY_FAILED), t.LVBytes(b"")]),
            ("incomingMessageHandler", [t.EmberIncomingMessageType.INCOMING_UNICAST, qnir, 0xFF, -40,
                                        0x1234, 0xFF, 0xFF, t.LVBytes(ZCL_QUERY_NEXT_IMAGE)]),
            ("incomingMessageHandler", [t.EmberIncomingMessageType.INCOMING_BROADCAST, annce, 200, -62,
                                        0x1234, 0xFF, 0xFF, t.LVBytes(ZDO_DEVICE_ANNOUNCE)]),
        ]
    return out


def handler_class(version):
    module = importlib.import_module(f"bellows.ezsp.v{version}")
    return getattr(module, f"EZSPv{version}")


def main():
    records = []
    for version in VERSIONS:
        captured = []
        proto = handler_class(version)(
            cb_handler=lambda name, args: captured.append((name, args)), gateway=None
        )
        sequence = 0
        for name, args in commands(version):
            sequence += 1
            proto._seq = sequence
            frame = proto._ezsp_frame(name, *args)
            _, tx_schema, _ = proto.COMMANDS[name]
            # bellows has no command parser; check its own schema reads the bytes back.
            values, rest = t.deserialize_dict(frame[5:], tx_schema)
            assert rest == b"", (version, name, rest)
            assert t.serialize_dict(list(values.values()), {}, tx_schema) == frame[5:]
            records.append(record(version, "command", name, sequence, frame, tx_schema, args))
        for direction, table, control in (
            ("response", responses(version), 0x80),
            ("callback", callbacks(version), 0x90),
        ):
            for name, args in table:
                sequence += 1
                frame_id, _, rx_schema = proto.COMMANDS[name]
                parameters = t.serialize_dict(args, {}, rx_schema)
                frame = bytes([sequence, control, 0x01]) + t.uint16_t(frame_id).serialize() + parameters
                captured.clear()
                proto(frame)  # bellows' own receive path: nothing awaits this seq -> cb_handler
                assert len(captured) == 1 and captured[0][0] == name, (version, name, captured)
                parsed = captured[0][1]
                assert t.serialize_dict(parsed, {}, rx_schema) == parameters, (version, name)
                records.append(record(version, direction, name, sequence, frame, rx_schema, args))
    json.dump(records, sys.stdout, indent=1)
    sys.stdout.write("\n")


def record(version, direction, name, sequence, frame, schema, args):
    keys = list(schema.keys())
    return {
        "version": version,
        "direction": direction,
        "name": name,
        "sequence": sequence,
        "frame": frame.hex(),
        "args": {k: jsonable(t_(a)) for k, t_, a in zip(keys, schema.values(), args)},
    }


if __name__ == "__main__":
    main()
