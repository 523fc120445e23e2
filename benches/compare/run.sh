#!/usr/bin/env bash
# Side-by-side: the same simulated network (same devices, same image, same radio delay) served
# once by zigbee-otad and once by unmodified zigpy; prints both and the ratios.
#
#   benches/compare/run.sh                 # EZSP: zigpy + bellows; 10 devices, 64 KiB image
#   PROTOCOL=znp benches/compare/run.sh    # Z-Stack (ZNP): zigpy + zigpy-znp, same shape
#   DEVICES=25 IMAGE_SIZE=131072 benches/compare/run.sh
#   DEVICES=1 LOSS_FROM_HOST=0.05 benches/compare/run.sh   # ASH under loss: 5 % of the host's
#                                          # frames never reach the simulated NCP
#
# It creates a scratch venv (default target/perf-venv, target/perf-venv-znp for ZNP, or
# $ZIGPY_VENV) with zigpy and bellows (or zigpy-znp) from the package registry on first use,
# builds the release binary and the daemon_scale harness, and writes
# target/perf/compare[-znp]-{otad,zigpy}.json. See docs/PERFORMANCE.md.
set -euo pipefail

cd "$(dirname "$0")/../.."
PROTOCOL=${PROTOCOL:-ezsp}
DEVICES=${DEVICES:-10}
IMAGE_SIZE=${IMAGE_SIZE:-65536}
RADIO_DELAY_MS=${RADIO_DELAY_MS:-2}
LOSS_FROM_HOST=${LOSS_FROM_HOST:-0}
LOSS_TO_HOST=${LOSS_TO_HOST:-0}
ZIGPY_VERSION=${ZIGPY_VERSION:-2.4.0}
BELLOWS_VERSION=${BELLOWS_VERSION:-1.2.1}
ZIGPY_ZNP_VERSION=${ZIGPY_ZNP_VERSION:-1.1.1}
OUT=target/perf
mkdir -p "$OUT"

case "$PROTOCOL" in
    ezsp)
        VENV=${ZIGPY_VENV:-target/perf-venv}
        RADIO_MODULE=bellows
        RADIO_PACKAGE="bellows==$BELLOWS_VERSION"
        NAME=compare
        ;;
    znp)
        VENV=${ZIGPY_VENV:-target/perf-venv-znp}
        RADIO_MODULE=zigpy_znp
        RADIO_PACKAGE="zigpy-znp==$ZIGPY_ZNP_VERSION"
        NAME=compare-znp
        ;;
    *)
        echo "PROTOCOL must be ezsp or znp, not $PROTOCOL" >&2
        exit 2
        ;;
esac

if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c "import zigpy, $RADIO_MODULE" 2>/dev/null; then
    echo "creating $VENV with zigpy $ZIGPY_VERSION and $RADIO_PACKAGE" >&2
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet "zigpy==$ZIGPY_VERSION" "$RADIO_PACKAGE"
fi

HARNESS=$(benches/scale/build.sh)

common=(--protocol "$PROTOCOL" --devices "$DEVICES" --image-size "$IMAGE_SIZE"
    --radio-delay-ms "$RADIO_DELAY_MS" --loss-from-host "$LOSS_FROM_HOST" --loss-to-host "$LOSS_TO_HOST")
echo "== zigbee-otad ($PROTOCOL)" >&2
"$HARNESS" --host otad "${common[@]}" --json "$OUT/$NAME-otad.json" >/dev/null
echo "== zigpy + $RADIO_MODULE" >&2
ZIGPY_PYTHON="$VENV/bin/python" "$HARNESS" --host zigpy "${common[@]}" \
    --json "$OUT/$NAME-zigpy.json" >/dev/null

python3 benches/compare/table.py "$OUT/$NAME-otad.json" "$OUT/$NAME-zigpy.json"
