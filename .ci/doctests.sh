#!/usr/bin/env bash
# The doctests on their own (`.ci/run` has just run `cargo test --workspace`),
# and the core's tests with defmt on, so its derives compile on the host too.
set -euo pipefail
cd "$(dirname "$0")/.."
source .ci/lib.sh
step "doctests"
cargo test --workspace --doc --locked
cargo test -p kekbit-nostd --features defmt --locked

step "kekbit-kv with its prost feature (persistent-kv's protobuf examples)"
cargo test -p kekbit-kv --all-features --locked
