#!/usr/bin/env bash
# Compiles the benchmarks (the `compare` harness and the divan
# micro-benchmarks) and runs `compare --quick` once as a smoke test: every
# workload on every system must run and check its records. It does not gate
# on the numbers; BENCHMARKS.md holds a full run
# (`cargo run --release -p kekbit-benches --bin compare -- --write-markdown BENCHMARKS.md`).
set -euo pipefail
cd "$(dirname "$0")/.."
source .ci/lib.sh

if [ ! -d /dev/shm ]; then
    skipped "bench: no /dev/shm on this machine"
    exit 0
fi

step "bench: build"
cargo build --release --locked -p kekbit-benches --bins
cargo bench --locked -p kekbit-benches --bench core --no-run

# Durable writes need a folder on a disk, not tmpfs.
disk_dir=/var/tmp
if [ "$(stat -f -c %T "$disk_dir" 2>/dev/null || echo tmpfs)" = tmpfs ]; then
    disk_dir="$PWD/target"
fi
step "bench: compare --quick (smoke test, durable writes in $disk_dir)"
cargo run --release --locked -p kekbit-benches --bin compare -- --quick --disk-dir "$disk_dir"
