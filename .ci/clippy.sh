#!/usr/bin/env bash
# Clippy with -D warnings: the workspace, the no_std core on the thumb
# targets (with and without defmt), the embedded firmware for each board
# (and its defmt build), and the loom configuration.
set -euo pipefail
cd "$(dirname "$0")/.."
source .ci/lib.sh

step "clippy: workspace"
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo clippy -p kekbit-kv --all-targets --all-features --locked -- -D warnings

step "clippy: kekbit-nostd on thumb targets"
if ensure_targets stable "${THUMB_TARGETS[@]}"; then
    cargo clippy -p kekbit-nostd --locked --target thumbv6m-none-eabi -- -D warnings
    cargo clippy -p kekbit-nostd --locked --target thumbv7em-none-eabihf -- -D warnings
    cargo clippy -p kekbit-nostd --locked --target thumbv7em-none-eabihf --features defmt -- -D warnings
else
    skipped "clippy on thumb targets: rustup could not add ${THUMB_TARGETS[*]}"
fi

step "clippy: embedded firmware, each board"
if ensure_targets stable "${EMBEDDED_TARGETS[@]}"; then
    for target in "${EMBEDDED_TARGETS[@]}"; do
        (cd embedded && cargo clippy --locked --release --target "$target" -- -D warnings)
    done
    (cd embedded && cargo clippy --locked --release --target thumbv7em-none-eabihf --features defmt -- -D warnings)
else
    skipped "clippy on the embedded firmware: rustup could not add ${EMBEDDED_TARGETS[*]}"
fi

step "clippy: loom configuration"
RUSTFLAGS="--cfg loom" cargo clippy -p kekbit-nostd -p loom-tests --all-targets --locked \
    --target-dir loom-tests/target -- -D warnings
