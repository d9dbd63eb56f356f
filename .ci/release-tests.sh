#!/usr/bin/env bash
# The core's unit and integration tests again in `--release`, without debug
# assertions. Defect 1 of issue 10 (a store past the region from safe code)
# showed only there: debug assertions had hidden it. The model-based test
# (kekbit-nostd/tests/model.rs) drives every writer entry point over a
# guarded region, so this step runs it the way users build. The doctests run
# in the doctests step.
set -euo pipefail
cd "$(dirname "$0")/.."
source .ci/lib.sh
step "release tests: kekbit-nostd without debug assertions"
cargo test -p kekbit-nostd --release --locked --lib --tests
