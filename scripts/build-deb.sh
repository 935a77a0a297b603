#!/usr/bin/env bash
# Build the Debian package of sesame (not run by CI):
#
#   scripts/build-deb.sh [cargo-deb options...]    # e.g. --features postgres
#
# Produces target/debian/sesame_<version>-1_<arch>.deb (under $CARGO_TARGET_DIR
# when set) with /usr/bin/sesame, /lib/systemd/system/sesame.service (enabled,
# not started, on install), /etc/sesame/sesame.yaml and /etc/default/sesame
# (conffiles), and the README and deploy examples in /usr/share/doc/sesame/.
# What goes in is [package.metadata.deb] in Cargo.toml.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v dpkg-deb >/dev/null 2>&1; then
  echo "build-deb.sh: dpkg-deb is missing (a Debian or Ubuntu host is needed)" >&2
  exit 1
fi
if ! cargo deb --version >/dev/null 2>&1; then
  echo "==> installing cargo-deb"
  cargo install cargo-deb --locked
fi

# Builds the release profile (strip, thin LTO) with any --features given,
# then packages it (the .deb's path is printed).
cargo deb --locked "$@"

# The packaged example config must be valid as shipped (exit 1 otherwise).
"${CARGO_TARGET_DIR:-target}/release/sesame" check -c deploy/sesame.yaml
