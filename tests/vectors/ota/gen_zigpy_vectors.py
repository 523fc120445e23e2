"""Generates tests/vectors/ota/zigpy_vectors.json: synthetic OTA files and how zigpy reads them.

Run with the reference venv (zigpy 2.4.0):
    /tmp/refvenv/bin/python tests/vectors/ota/gen_zigpy_vectors.py

Each case holds the file bytes (hex) and zigpy's `parse_ota_image` + `validate_ota_image` result in
the same shape as ../shared/testdata/ota-corpus/expected.json. Cases with a "build" description are
also written by zigpy's own serialiser, so the Rust writer must reproduce its bytes exactly.
"""

import json
import pathlib
import struct
import zlib

import zigpy.types as t
from zigpy.ota import validators
from zigpy.ota.image import (
    ElementTagId,
    FieldControl,
    HueSBLOTAImage,
    OTAImage,
    OTAImageHeader,
    SubElement,
    TelinkEncryptedSubElement,
    TelinkOTAImage,
    parse_ota_image,
)


def gbl(payload_len, corrupt=False):
    out = b"\xeb\x17\xa6\x03" + struct.pack("<I", 8) + struct.pack("<II", 0x03000000, 0)
    out += b"\xfe\x01\x01\xfe" + struct.pack("<I", payload_len) + bytes(i * 7 % 256 for i in range(payload_len))
    out += b"\xfc\x04\x04\xfc" + struct.pack("<I", 4)
    crc = zlib.crc32(out) ^ (1 if corrupt else 0)
    return out + struct.pack("<I", crc)


def ebl(payload_len, corrupt=False, pad=b"\xff", align=True):
    out = b"\x00\x00\x00\x8c" + b"\x02\x02" + bytes(0x8A)
    out += b"\xfe\x01" + struct.pack(">H", payload_len) + bytes(i * 3 % 256 for i in range(payload_len))
    out += b"\xfc\x04" + struct.pack(">H", 4)
    crc = zlib.crc32(out) ^ (1 if corrupt else 0)
    out += struct.pack("<I", crc)
    if align:
        out += pad * (-len(out) % 64)
    return out


def header(manufacturer=0x1189, image_type=0x00CD, version=0x03483712, text="synthetic", fc=0, **optional):
    hdr = OTAImageHeader(
        upgrade_file_id=OTAImageHeader.MAGIC_VALUE,
        header_version=0x0100,
        header_length=56 + (1 if fc & 1 else 0) + (8 if fc & 2 else 0) + (4 if fc & 4 else 0),
        field_control=FieldControl(fc),
        manufacturer_id=manufacturer,
        image_type=image_type,
        file_version=version,
        stack_version=2,
        header_string=text,
        image_size=0,
        **optional,
    )
    return hdr


def build_image(hdr, elements, telink=False):
    """zigpy serialises; image_size is fixed up first, as zigpy requires it to match."""
    subs = []
    for tag, data, info in elements:
        if info is not None:
            subs.append(TelinkEncryptedSubElement(tag_id=tag, tag_info=info, data=data))
        else:
            subs.append(SubElement(tag_id=ElementTagId(tag), data=data))
    size = hdr.header_length + sum(len(s.serialize()) for s in subs)
    hdr.image_size = size
    cls = TelinkOTAImage if telink else OTAImage
    return cls(header=hdr, subelements=subs).serialize()


def describe(hdr, elements):
    return {
        "manufacturer_code": hdr.manufacturer_id,
        "image_type": hdr.image_type,
        "file_version": hdr.file_version,
        "header_string": bytes(hdr.header_string).rstrip(b"\x00").decode(),
        "security_credential_version": hdr.security_credential_version,
        "upgrade_file_destination": int.from_bytes(bytes(hdr.upgrade_file_destination.serialize()), "little")
        if hdr.upgrade_file_destination is not None
        else None,
        "minimum_hardware_version": hdr.minimum_hardware_version,
        "maximum_hardware_version": hdr.maximum_hardware_version,
        "sub_elements": [
            {"tag": tag, "data_hex": data.hex(), **({"telink_tag_info": info} if info is not None else {})}
            for tag, data, info in elements
        ],
    }


def zigpy_reading(data):
    try:
        image, rest = parse_ota_image(data)
    except Exception as e:  # zigpy refuses
        return {"parse": "refused", "error": f"{type(e).__name__}: {e}"}
    hdr = image.header
    out = {
        "parse": "ok",
        "zigpy_class": type(image).__name__,
        "header": {
            "header_version": hdr.header_version,
            "header_length": hdr.header_length,
            "field_control": int(hdr.field_control),
            "manufacturer_id": hdr.manufacturer_id,
            "image_type": hdr.image_type,
            "file_version": hdr.file_version,
            "stack_version": hdr.stack_version,
            "header_string_hex": bytes(hdr.header_string).hex(),
            "image_size": hdr.image_size,
            "security_credential_version": hdr.security_credential_version,
            "upgrade_file_destination": str(hdr.upgrade_file_destination)
            if hdr.upgrade_file_destination is not None
            else None,
            "minimum_hardware_version": hdr.minimum_hardware_version,
            "maximum_hardware_version": hdr.maximum_hardware_version,
        },
        "subelements": None
        if isinstance(image, HueSBLOTAImage)
        else [
            {
                "tag_id": int(s.tag_id),
                "length": len(s.data),
                **({"telink_tag_info": s.tag_info} if isinstance(s, TelinkEncryptedSubElement) else {}),
            }
            for s in image.subelements
        ],
        "trailing_bytes_after_image": len(rest),
        "serialized_hex": image.serialize().hex(),
    }
    try:
        out["validation"] = validators.validate_ota_image(image).name
    except validators.ValidationError as e:
        out["validation"] = "INVALID"
        out["validation_error"] = str(e)
    return out


cases = []


def case(name, data, build=None, ours=None):
    entry = {"name": name, "file_hex": data.hex(), "zigpy": zigpy_reading(data)}
    if build is not None:
        entry["build"] = build
    if ours is not None:
        entry["ours"] = ours
    cases.append(entry)


def built(name, hdr, elements, telink=False):
    data = build_image(hdr, elements, telink)
    case(name, data, describe(hdr, elements))
    return data


built("gbl_valid", header(), [(0, gbl(200), None)])
built(
    "all_optional_fields_ebl",
    header(
        fc=7,
        security_credential_version=3,
        upgrade_file_destination=t.EUI64.convert("00:0d:6f:00:00:19:8b:36"),
        minimum_hardware_version=0x0100,
        maximum_hardware_version=0x05FF,
    ),
    [(0, ebl(300), None)],
)
built(
    "hardware_versions_vendor_tag_first",
    header(manufacturer=0x10F2, fc=4, minimum_hardware_version=0, maximum_hardware_version=5),
    [(0xF7BD, bytes(160), None), (0, gbl(100), None), (3, bytes(range(16)), None)],
)
built("destination_only", header(fc=2, upgrade_file_destination=t.EUI64.convert("01:02:03:04:05:06:07:08")), [(0, b"\x12\x34\x56\x78" + bytes(20), None)])
built("credential_only_no_upgrade_image", header(fc=1, security_credential_version=0), [(0xF001, gbl(50), None)])
built("telink_tag_info", header(text="Telink OTA Sample Usage"), [(0xF000, bytes(range(200)), 3073)], telink=True)
built("two_images_one_bad_crc", header(manufacturer=0x115F), [(0xCDEF, bytes(17), None), (0, gbl(20), None), (0, gbl(40, corrupt=True), None)])
built("ebl_not_multiple_of_64", header(manufacturer=0x1078), [(0, ebl(101, align=False), None)])
built("ebl_bad_padding", header(), [(0, ebl(101, pad=b"\x00"), None)])
built("encrypted_ebl", header(), [(0, b"\xfb\x05\x00\x06\x02\x01\x00\x01" + bytes(56), None)])

plain = build_image(header(), [(0, ebl(64), None)])
case("trailing_bytes", plain + b"\x6a\xfc\xb4\xe9")

legrand_image = build_image(header(manufacturer=0x1021, text=" " * 32), [(0, bytes(40), None)])
case("legrand_wrapper", struct.pack("<I", len(legrand_image)) + legrand_image + bytes(17))

ngis_image = build_image(header(manufacturer=0x117C), [(0, ebl(200), None), (0xFFBF, bytes(64), None)])
hash_count = 1
offset = 40 + 32 * hash_count
ngis = b"NGIS" + struct.pack("<III", 12, 0, 0) + struct.pack("<III", offset, len(ngis_image), offset + len(ngis_image) + 512)
ngis += struct.pack("<III", 0, 16384, hash_count) + bytes(32 * hash_count)
case("ikea_ngis", ngis + ngis_image + bytes(range(256)) * 2)

hue = header(manufacturer=0x100B, text="")
hue.image_size = 56 + 10
case("hue_sbl", hue.serialize() + b"\x2a\x00\x01\x04\x00\x66\x37\x26\x00\x00")

raw = header(manufacturer=0x138B, text="Ultron ColorTemp Light")
raw.image_size = 56 + 12
case("unframed_raw_firmware", raw.serialize() + bytes([0x00, 0x20, 0x00, 0x20, 0xC1, 0x00, 0x00, 0x00, 0x11, 0x22, 0x33, 0x44]), ours="unframed")

short = header()
short.image_size = 5000
case("truncated", short.serialize() + bytes(100), ours="file truncated")

case("no_magic", b"\n\n<!DOCTYPE html>" + bytes(60), ours="no OTA magic")

prefixed = bytes(range(100)) + plain
case("unknown_prefix", prefixed, ours="complete")

path = pathlib.Path(__file__).with_name("zigpy_vectors.json")
path.write_text(json.dumps({"generator": "zigpy.ota.image.parse_ota_image + validators.validate_ota_image (zigpy 2.4.0)", "script": "gen_zigpy_vectors.py", "cases": cases}, indent=1) + "\n")
print(f"wrote {len(cases)} cases to {path}")
