#!/usr/bin/env bash
# Loom models of the writer/reader protocol (see loom-tests/README.md), then
# the negative controls, each a build of its own with one rule broken, where
# the control model must fail, for the right reason (each test checks loom's
# report and is `should_panic`):
#   --cfg kekbit_weakened              the writer publishes with `Relaxed`;
#   --cfg kekbit_weakened_batch_order  a batch stores its records' commit
#                                      words after its marker;
#   --cfg kekbit_weakened_batch_clear  a batch clears the word past its last
#                                      record after its marker.
# Every build is `--release`, each in its own target directory.
set -euo pipefail
cd "$(dirname "$0")/.."
source .ci/lib.sh

export LOOM_MAX_PREEMPTIONS=${LOOM_MAX_PREEMPTIONS:-3}
# Loom reports name the protocol's lines; full backtraces add nothing here.
export RUST_BACKTRACE=0

step "loom: models (LOOM_MAX_PREEMPTIONS=$LOOM_MAX_PREEMPTIONS)"
t0=$SECONDS
RUSTFLAGS="--cfg loom" cargo test -p loom-tests --release --locked \
    --target-dir loom-tests/target -- --nocapture
printf 'loom models: %ss (build included)\n' $((SECONDS - t0))

step "loom: negative control (publish weakened to Relaxed; must fail)"
t0=$SECONDS
# --nocapture shows the failure loom reports; the test passes only if the
# model failed with a race on the payload bytes or a wrong payload.
RUSTFLAGS="--cfg loom --cfg kekbit_weakened" cargo test -p loom-tests --release --locked \
    --target-dir loom-tests/target/weakened -- --nocapture
printf 'loom negative control: %ss (build included)\n' $((SECONDS - t0))

for weakening in batch_order batch_clear; do
    step "loom: negative control (kekbit_weakened_$weakening; must fail)"
    t0=$SECONDS
    RUSTFLAGS="--cfg loom --cfg kekbit_weakened_$weakening" cargo test -p loom-tests --release \
        --locked --target-dir "loom-tests/target/weakened-$weakening" --test batches \
        -- --nocapture negative_control
    printf 'loom negative control %s: %ss (build included)\n' "$weakening" $((SECONDS - t0))
done
