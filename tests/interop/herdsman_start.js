// Starts zigbee-herdsman's `ember` adapter (unmodified, from npm) against an EZSP port, as
// Zigbee2MQTT does, and prints one JSON line with what it learned: the coordinator's IEEE
// address, the network parameters, the EZSP version, and a backup's network key.
//
// Usage: NODE_PATH=<dir>/node_modules node herdsman_start.js /dev/pts/N [--form]
// Without --form the network options are Zigbee2MQTT's defaults, which the simulated stick
// holds (`zigbee-otad simulate`), so the adapter resumes it; with --form they differ, so the
// adapter leaves that network and forms its own. Exit status 0 only if start() resolved and
// every read succeeded. Used by tests/it/sim.rs.
"use strict";

const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const { EmberAdapter } = require("zigbee-herdsman/dist/adapter/ember/adapter/emberAdapter");

async function main() {
    const port = process.argv[2];
    const form = process.argv.includes("--form");
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "herdsman-"));
    const networkOptions = {
        panID: form ? 0x1234 : 0x1a62,
        extendedPanID: form ? [1, 2, 3, 4, 5, 6, 7, 8] : [0xdd, 0xdd, 0xdd, 0xdd, 0xdd, 0xdd, 0xdd, 0xdd],
        channelList: [form ? 15 : 11],
        networkKey: form
            ? [9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9]
            : [1, 3, 5, 7, 9, 11, 13, 15, 0, 2, 4, 6, 8, 10, 12, 13],
        networkKeyDistribute: false,
    };
    const adapter = new EmberAdapter(
        networkOptions,
        { path: port, baudRate: 115200, rtscts: false, adapter: "ember" },
        path.join(dir, "coordinator_backup.json"),
        { concurrent: 8, disableLED: true },
    );
    const timer = setTimeout(() => {
        console.error("herdsman start() did not resolve within 60 s");
        process.exit(2);
    }, 60000);
    const result = await adapter.start();
    const ieee = await adapter.getCoordinatorIEEE();
    const parameters = await adapter.getNetworkParameters();
    const version = await adapter.getCoordinatorVersion();
    const backup = await adapter.backup([]);
    console.log(
        JSON.stringify({
            start: result,
            ieee,
            pan_id: parameters.panID,
            extended_pan_id: parameters.extendedPanID,
            channel: parameters.channel,
            ezsp_version: version.meta.ezsp,
            network_key: Buffer.from(backup.networkOptions.networkKey).toString("hex"),
        }),
    );
    clearTimeout(timer);
    await adapter.stop();
    fs.rmSync(dir, { recursive: true, force: true });
}

main().then(
    () => process.exit(0),
    (error) => {
        console.error(error);
        process.exit(1);
    },
);
