#!/usr/bin/env bash
# Builds the Debian package with cargo-deb (`cargo install cargo-deb --locked` once), lists its
# contents and checks it with lintian (`apt-get install lintian`). Extra arguments go to cargo-deb
# (e.g. `--no-build` after a `cargo build --release`).
#
# The packaged /etc/zigbee-otad/config.toml is config/zigbee-otad.toml with the serial port
# commented out: until an installer names the port, the config is not valid and the unit's
# ExecCondition keeps the service from starting.
set -euo pipefail
cd "$(dirname "$0")/.."

mkdir -p target/deb
sed -E 's|^port = (.*)$|# port = \1\n# ^ name your coordinator here, then: systemctl start zigbee-otad|' \
    config/zigbee-otad.toml > target/deb/config.toml
if grep -q '^port = ' target/deb/config.toml; then
    echo "the packaged config still names a port" >&2
    exit 1
fi

cargo deb "$@"
deb=$(ls -t target/debian/zigbee-otad_*.deb | head -n 1)
echo "== $deb"
dpkg-deb --info "$deb"
dpkg-deb --contents "$deb"
echo "== lintian"
lintian --fail-on error --info "$deb"
echo "== $deb passes lintian (no errors)"
