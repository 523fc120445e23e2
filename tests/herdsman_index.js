// Loads zigbee-otad's exported index with unmodified zigbee-herdsman's own OTA helpers, the
// way Zigbee2MQTT does with `ota: zigbee_ota_override_index_location: <url>`, then fetches
// every image with herdsman's own download + sha512 check and parses it with its OTA parser.
//
// usage: NODE_PATH=<dir>/node_modules node tests/herdsman_index.js http://127.0.0.1:PORT/index.json
// Prints one JSON line per image and a final `{"ok":true,"images":N}`; exits non-zero on any
// failure (herdsman throws on a bad checksum or a file that is not OTA).
"use strict";

const os = require("node:os");
const ota = require("zigbee-herdsman/dist/controller/helpers/ota");
const version = require("zigbee-herdsman/package.json").version;

async function main() {
    const indexUrl = process.argv[2];
    if (!indexUrl) {
        throw new Error("give the index URL");
    }
    // The override index is ours; the main index points at a closed loopback port, so herdsman
    // falls back to the override alone and nothing leaves this machine.
    ota.setOtaConfiguration(os.tmpdir(), indexUrl);
    const index = await ota.getOtaIndex({url: "http://127.0.0.1:9/index.json"});
    if (!Array.isArray(index) || index.length === 0) {
        throw new Error(`herdsman loaded no entries from ${indexUrl}`);
    }
    const seen = new Set();
    for (const meta of index) {
        if (seen.has(meta.sha512)) {
            continue; // one entry per model id can share an image
        }
        seen.add(meta.sha512);
        const firmware = await ota.getOtaFirmware(meta.url, meta.sha512);
        const image = ota.parseOtaImage(firmware);
        const header = image.header;
        const mismatch = [];
        if (header.manufacturerCode !== meta.manufacturerCode) mismatch.push("manufacturerCode");
        if (header.imageType !== meta.imageType) mismatch.push("imageType");
        if (header.fileVersion !== meta.fileVersion) mismatch.push("fileVersion");
        if (firmware.length !== meta.fileSize) mismatch.push("fileSize");
        if (mismatch.length > 0) {
            throw new Error(`${meta.url}: index and file disagree on ${mismatch.join(", ")}`);
        }
        console.log(
            JSON.stringify({
                url: meta.url,
                manufacturerCode: header.manufacturerCode,
                imageType: header.imageType,
                fileVersion: header.fileVersion,
                totalImageSize: header.totalImageSize,
                elements: image.elements.length,
                minFileVersion: meta.minFileVersion,
                maxFileVersion: meta.maxFileVersion,
                modelId: meta.modelId,
            }),
        );
    }
    console.log(JSON.stringify({ok: true, images: seen.size, entries: index.length, herdsman: version}));
}

main().catch((error) => {
    console.error(`herdsman check failed: ${error && error.stack ? error.stack : error}`);
    process.exit(1);
});
