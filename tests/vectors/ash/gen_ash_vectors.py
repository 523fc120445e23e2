#!/usr/bin/env python3
"""Generates ash_vectors.json with the reference ASH implementation (bellows' ash.py).

Run with a Python environment that has bellows installed:
    python3 tests/vectors/ash/gen_ash_vectors.py > tests/vectors/ash/ash_vectors.json

Every "wire" value is exactly what bellows writes to the serial port (randomised, CRC, stuffed,
Flag). Every "stream" case is a byte stream fed to bellows' receive path, with the frames bellows
delivered. The Rust tests in tests/it/ash.rs read the committed JSON; they never run Python.
"""

import json
from importlib.metadata import version

from bellows import ash
import bellows.types as t


class Capture:
    """A fake transport that records what AshProtocol writes."""

    def __init__(self):
        self.out = bytearray()

    def write(self, data):
        self.out.extend(data)

    def is_closing(self):
        return False


def new_protocol():
    protocol = ash.AshProtocol(None)
    protocol._transport = Capture()
    return protocol


def wire(frame):
    protocol = new_protocol()
    protocol._write_frame(frame)
    return bytes(protocol._transport.out)


def describe(frame):
    if isinstance(frame, ash.DataFrame):
        return {"type": "DATA", "frm_num": frame.frm_num, "re_tx": bool(frame.re_tx),
                "ack_num": frame.ack_num, "payload": frame.ezsp_frame.hex()}
    if isinstance(frame, ash.AckFrame):
        return {"type": "ACK", "ack_num": frame.ack_num, "n_rdy": bool(frame.ncp_ready)}
    if isinstance(frame, ash.NakFrame):
        return {"type": "NAK", "ack_num": frame.ack_num, "n_rdy": bool(frame.ncp_ready)}
    if isinstance(frame, ash.RstFrame):
        return {"type": "RST"}
    if isinstance(frame, ash.RStackFrame):
        return {"type": "RSTACK", "version": frame.version, "code": int(frame.reset_code)}
    if isinstance(frame, ash.ErrorFrame):
        return {"type": "ERROR", "version": frame.version, "code": int(frame.reset_code)}
    raise TypeError(frame)


def frames():
    lfsr = ash.PSEUDO_RANDOM_DATA_SEQUENCE
    out = []

    def add(name, frame):
        out.append({"name": name, "frame": describe(frame), "wire": wire(frame).hex()})

    add("ug101 DATA(2,5) version(2)",
        ash.DataFrame(frm_num=2, re_tx=False, ack_num=5, ezsp_frame=bytes.fromhex("00000002")))
    for frm in range(8):
        ack = (frm * 3 + 1) % 8
        payload = bytes([frm, 0x00, 0x01]) + bytes(range(frm * 7))
        add(f"DATA frm {frm} ack {ack}",
            ash.DataFrame(frm_num=frm, re_tx=False, ack_num=ack, ezsp_frame=payload))
        add(f"DATA frm {frm} ack {ack} reTx",
            ash.DataFrame(frm_num=frm, re_tx=True, ack_num=ack, ezsp_frame=payload))
    # A payload whose randomised bytes are each reserved byte in turn, so the DATA field needs
    # stuffing of every reserved value.
    for reserved in sorted(ash.RESERVED_BYTES):
        payload = bytes([0x01, 0x00, reserved ^ lfsr[2], 0x05, reserved ^ lfsr[4]])
        add(f"DATA stuffing 0x{reserved:02X}",
            ash.DataFrame(frm_num=1, re_tx=False, ack_num=2, ezsp_frame=payload))
    all_reserved = bytes(b ^ lfsr[i] for i, b in enumerate(sorted(ash.RESERVED_BYTES) * 3))
    add("DATA every reserved byte thrice",
        ash.DataFrame(frm_num=6, re_tx=False, ack_num=7, ezsp_frame=all_reserved))
    add("DATA long 200 bytes",
        ash.DataFrame(frm_num=3, re_tx=False, ack_num=4,
                      ezsp_frame=bytes((i * 37) & 0xFF for i in range(200))))
    add("DATA randomised zeros 64",
        ash.DataFrame(frm_num=0, re_tx=False, ack_num=0, ezsp_frame=bytes(64)))
    for ack in range(8):
        for rdy in (False, True):
            add(f"ACK {ack} nRdy {int(rdy)}", ash.AckFrame(res=0, ncp_ready=rdy, ack_num=ack))
            add(f"NAK {ack} nRdy {int(rdy)}", ash.NakFrame(res=0, ncp_ready=rdy, ack_num=ack))
    add("RST", ash.RstFrame())
    for code in t.NcpResetCode:
        add(f"RSTACK {code.name}", ash.RStackFrame(version=2, reset_code=code))
        add(f"ERROR {code.name}", ash.ErrorFrame(version=2, reset_code=code))
    return out


def streams():
    """Byte streams through bellows' receiver, and the frames it delivered."""
    pieces = {
        "ack": wire(ash.AckFrame(res=0, ncp_ready=False, ack_num=3)),
        "data": wire(ash.DataFrame(frm_num=5, re_tx=False, ack_num=3,
                                   ezsp_frame=bytes.fromhex("00800002021130"))),
        "stuffed": wire(ash.DataFrame(frm_num=1, re_tx=False, ack_num=2,
                                      ezsp_frame=bytes.fromhex("2000010500"))),
        "rstack": wire(ash.RStackFrame(version=2, reset_code=t.NcpResetCode.RESET_SOFTWARE)),
    }
    cases = {
        "back to back with extra flags": b"\x7e" + pieces["ack"] + b"\x7e\x7e" + pieces["data"],
        "xon xoff sprinkled": bytes(b for c in pieces["stuffed"] for b in (c, 0x11))
        + b"\x13" + pieces["ack"],
        "cancel mid frame": pieces["data"][:4] + b"\x1a" + pieces["ack"],
        "real ncp rstack with cancel": b"\x1a" + pieces["rstack"],
        "substitute mid frame": pieces["data"][:4] + b"\x18" + pieces["data"][4:] + pieces["ack"],
        "bad crc then good": pieces["data"][:-3] + bytes([pieces["data"][-3] ^ 1])
        + pieces["data"][-2:] + pieces["ack"],
        "noise then frames": bytes([0x01, 0x02, 0x03]) + b"\x7e" + pieces["ack"] + pieces["rstack"],
        "rst with cancel prefix": bytes([0x1a] * 32) + wire(ash.RstFrame()),
    }
    out = []
    for name, data in cases.items():
        received = []
        protocol = new_protocol()
        protocol.frame_received = received.append
        protocol.data_received(data)
        out.append({"name": name, "input": data.hex(),
                    "frames": [describe(f) for f in received]})
    return out


def main():
    host = new_protocol()
    host.send_reset()
    document = {
        "generator": f"bellows {version('bellows')} via tests/vectors/ash/gen_ash_vectors.py",
        "pseudo_random_sequence": bytes(ash.PSEUDO_RANDOM_DATA_SEQUENCE[:32]).hex(),
        "host_reset_wire": bytes(host._transport.out).hex(),
        "frames": frames(),
        "streams": streams(),
    }
    print(json.dumps(document, indent=1))


if __name__ == "__main__":
    main()
