#!/usr/bin/env bash
# kekbit-nostd builds for Cortex-M0 (no CAS, no 64-bit atomics) and for
# Cortex-M4F, the latter with and without defmt.
set -euo pipefail
cd "$(dirname "$0")/.."
source .ci/lib.sh
step "thumb builds"
if ! ensure_targets stable "${THUMB_TARGETS[@]}"; then
    skipped "thumb builds: rustup could not add ${THUMB_TARGETS[*]}"
    exit 0
fi
cargo build -p kekbit-nostd --locked --release --target thumbv6m-none-eabi
cargo build -p kekbit-nostd --locked --release --target thumbv7em-none-eabihf
cargo build -p kekbit-nostd --locked --release --target thumbv7em-none-eabihf --features defmt
