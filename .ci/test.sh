#!/usr/bin/env bash
# The README's test command, then the doctests on their own (with defmt on,
# so the feature's derives are compiled on the host too).
set -euo pipefail
cd "$(dirname "$0")/.."
source .ci/lib.sh
step "cargo test --workspace (the README's test command)"
cargo test --workspace
step "doctests"
cargo test --workspace --doc --locked
cargo test -p kekbit-nostd --features defmt --locked
