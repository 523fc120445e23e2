// Asks unmodified zigbee-herdsman's own matcher (Device.findMatchingOtaImage, as Zigbee2MQTT
// calls it through checkOta) which index entry each device would get.
//
// usage: NODE_PATH=<dir>/node_modules node tests/herdsman_match.js INDEX.json < devices.json
// devices.json: [{"manufacturerCode","imageType","fileVersion","hardwareVersion"?,"modelId"?,
// "manufacturerName"?}, ...]. Prints {"herdsman": version, "answers": [...]}: per device
// "available" (herdsman's own rule: the first matching entry is newer than the device) and
// "matches", every entry herdsman's predicate accepts, in index order ({fileVersion, sha512}):
// herdsman is asked again with each found entry taken out of the index it reads.
"use strict";

const fs = require("node:fs");
const {Device} = require("zigbee-herdsman/dist/controller/model/device");
const ota = require("zigbee-herdsman/dist/controller/helpers/ota");
const version = require("zigbee-herdsman/package.json").version;

// Quiet: stdout carries only the answer.
const quiet = () => {};
require("zigbee-herdsman/dist/utils/logger").setLogger({debug: quiet, info: quiet, warning: quiet, error: quiet});

async function main() {
    const indexPath = process.argv[2];
    const devices = JSON.parse(fs.readFileSync(0, "utf8"));
    const source = {url: indexPath};
    const full = JSON.parse(fs.readFileSync(indexPath, "utf8"));
    let remaining = full;
    // findMatchingOtaImage reads the index through this module's export on every call.
    ota.getOtaIndex = async () => remaining;
    const answers = [];
    for (const d of devices) {
        // The fields findMatchingOtaImage reads from the device it is called on.
        const device = {
            ieeeAddr: "0x0000000000000000",
            modelID: d.modelId ?? undefined,
            manufacturerName: d.manufacturerName ?? undefined,
            meta: {},
        };
        const current = {
            manufacturerCode: d.manufacturerCode,
            imageType: d.imageType,
            fileVersion: d.fileVersion,
            // Absent, not null, as in a Query Next Image Request without one (herdsman would
            // take null for hardware version 0).
            hardwareVersion: d.hardwareVersion ?? undefined,
        };
        const find = () => Device.prototype.findMatchingOtaImage.call(device, source, current, {});
        remaining = full;
        const first = await find();
        const matches = [];
        for (let meta = first; meta !== undefined; meta = await find()) {
            matches.push({fileVersion: meta.fileVersion, sha512: meta.sha512});
            remaining = remaining.filter((entry) => entry !== meta);
        }
        answers.push({available: first !== undefined && current.fileVersion < first.fileVersion, matches});
    }
    console.log(JSON.stringify({herdsman: version, answers}));
}

main().catch((error) => {
    console.error(error);
    process.exit(1);
});
