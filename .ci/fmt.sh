#!/usr/bin/env bash
# Formatting of the workspace and of the fuzz project.
set -euo pipefail
cd "$(dirname "$0")/.."
source .ci/lib.sh
step "cargo fmt --check"
cargo fmt --all --check
if [ -f fuzz/Cargo.toml ]; then
    (cd fuzz && cargo fmt --all --check)
fi
