#!/usr/bin/env bash
# Formatting of the workspace, the fuzz project and the embedded firmware.
set -euo pipefail
cd "$(dirname "$0")/.."
source .ci/lib.sh
step "cargo fmt --check"
cargo fmt --all --check
if [ -f fuzz/Cargo.toml ]; then
    (cd fuzz && cargo fmt --all --check)
fi
if [ -f embedded/Cargo.toml ]; then
    (cd embedded && cargo fmt --all --check)
fi
