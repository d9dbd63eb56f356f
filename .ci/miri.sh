#!/usr/bin/env bash
# The core under miri: every test that does not map a file.
set -euo pipefail
cd "$(dirname "$0")/.."
source .ci/lib.sh
step "miri: kekbit-nostd"
if ! have_nightly || ! ensure_components nightly miri rust-src; then
    skipped "miri: the nightly toolchain with miri and rust-src could not be installed"
    exit 0
fi
cargo +nightly miri setup >/dev/null
cargo +nightly miri test -p kekbit-nostd
