// Starts unmodified zigbee-herdsman's zstack adapter (npm zigbee-herdsman@10.9.5) against the
// simulated ZNP at argv[2] and prints what it read as one JSON line:
// {"result": ..., "ieee": ..., "network": {...}, "version": {...}}.
// Usage: node herdsman_zstack_start.js PTY HERDSMAN_DIR BACKUP_PATH
"use strict";
const path = require("node:path");
const [pty, herdsmanDir, backupPath] = process.argv.slice(2);
const dist = path.join(herdsmanDir, "node_modules", "zigbee-herdsman", "dist");
const { ZStackAdapter } = require(path.join(dist, "adapter", "z-stack", "adapter", "zStackAdapter.js"));

// The simulator's default network (sim::ZnpNetwork::default).
const networkOptions = {
    panID: 0x1a62,
    extendedPanID: [0xdd, 0xdd, 0xdd, 0xdd, 0xdd, 0xdd, 0xdd, 0xdd],
    channelList: [15],
    networkKey: Array.from({ length: 16 }, (_, i) => 2 * i + 1),
    networkKeyDistribute: false,
};

async function main() {
    const adapter = new ZStackAdapter(
        networkOptions,
        { path: pty, baudRate: 115200, rtscts: false, adapter: "zstack" },
        backupPath,
        { disableLED: false, concurrent: 16 },
    );
    const timer = setTimeout(() => {
        console.error("herdsman start() did not resolve within 60 s");
        process.exit(3);
    }, 60000);
    const result = await adapter.start();
    const ieee = await adapter.getCoordinatorIEEE();
    const network = await adapter.getNetworkParameters();
    const version = await adapter.getCoordinatorVersion();
    clearTimeout(timer);
    console.log(JSON.stringify({ result, ieee, network, version: version.type }));
    await adapter.stop();
    process.exit(0);
}

main().catch((error) => {
    console.error(`herdsman zstack start failed: ${error && error.stack ? error.stack : error}`);
    process.exit(2);
});
