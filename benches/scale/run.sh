#!/usr/bin/env bash
# Scale and idle measurements of zigbee-otad against the simulated coordinator.
#
#   benches/scale/run.sh            # 250 devices at once (16 KiB image), then 60 s idle
#   DEVICES=500 IDLE_SECONDS=120 benches/scale/run.sh
#
# Writes target/perf/scale.json and target/perf/idle.json. See docs/PERFORMANCE.md.
set -euo pipefail

cd "$(dirname "$0")/../.."
DEVICES=${DEVICES:-250}
IMAGE_SIZE=${IMAGE_SIZE:-16384}
RADIO_DELAY_MS=${RADIO_DELAY_MS:-2}
IDLE_SECONDS=${IDLE_SECONDS:-60}
OUT=target/perf
mkdir -p "$OUT"

HARNESS=$(benches/scale/build.sh)

echo "== $DEVICES devices at once" >&2
"$HARNESS" --host otad --devices "$DEVICES" --image-size "$IMAGE_SIZE" \
    --radio-delay-ms "$RADIO_DELAY_MS" --json "$OUT/scale.json"
echo "== idle for $IDLE_SECONDS s" >&2
"$HARNESS" --host otad --idle "$IDLE_SECONDS" --json "$OUT/idle.json"
