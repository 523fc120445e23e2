#!/usr/bin/env bash
# Builds the release zigbee-otad binary and the daemon_scale harness (release profile, so both
# share one dependency build) and prints the harness's path.
set -euo pipefail

cd "$(dirname "$0")/../.."
cargo build --release --quiet --bin zigbee-otad >&2
cargo build --release --quiet --bench daemon_scale --message-format=json \
    | python3 -c '
import json, sys
path = None
for line in sys.stdin:
    message = json.loads(line)
    if message.get("reason") == "compiler-artifact" and message["target"]["name"] == "daemon_scale":
        path = message.get("executable")
if not path:
    sys.exit("daemon_scale was not built")
print(path)
'
