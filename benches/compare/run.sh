#!/usr/bin/env bash
# Side-by-side: the same simulated network (same devices, same image, same radio delay) served
# once by zigbee-otad and once by unmodified zigpy + bellows; prints both and the ratios.
#
#   benches/compare/run.sh                 # 10 devices, 64 KiB image
#   DEVICES=25 IMAGE_SIZE=131072 benches/compare/run.sh
#
# It creates a scratch venv (default target/perf-venv, or $ZIGPY_VENV) with zigpy and bellows
# from the package registry on first use, builds the release binary and the daemon_scale
# harness, and writes target/perf/compare-{otad,zigpy}.json. See docs/PERFORMANCE.md.
set -euo pipefail

cd "$(dirname "$0")/../.."
DEVICES=${DEVICES:-10}
IMAGE_SIZE=${IMAGE_SIZE:-65536}
RADIO_DELAY_MS=${RADIO_DELAY_MS:-2}
ZIGPY_VERSION=${ZIGPY_VERSION:-2.4.0}
BELLOWS_VERSION=${BELLOWS_VERSION:-1.2.1}
VENV=${ZIGPY_VENV:-target/perf-venv}
OUT=target/perf
mkdir -p "$OUT"

if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import zigpy, bellows' 2>/dev/null; then
    echo "creating $VENV with zigpy $ZIGPY_VERSION and bellows $BELLOWS_VERSION" >&2
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet "zigpy==$ZIGPY_VERSION" "bellows==$BELLOWS_VERSION"
fi

HARNESS=$(benches/scale/build.sh)

common=(--devices "$DEVICES" --image-size "$IMAGE_SIZE" --radio-delay-ms "$RADIO_DELAY_MS")
echo "== zigbee-otad" >&2
"$HARNESS" --host otad "${common[@]}" --json "$OUT/compare-otad.json" >/dev/null
echo "== zigpy + bellows" >&2
ZIGPY_PYTHON="$VENV/bin/python" "$HARNESS" --host zigpy "${common[@]}" \
    --json "$OUT/compare-zigpy.json" >/dev/null

python3 benches/compare/table.py "$OUT/compare-otad.json" "$OUT/compare-zigpy.json"
