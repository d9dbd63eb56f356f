#!/usr/bin/env bash
# kekbit-std beyond `cargo test --workspace` (which already runs its unit
# tests, doctests and the cross-process tests in tests/):
#  1. its examples, run as the README says, in pairs of processes;
#  2. its unit tests under miri (those that map files are ignored there).
set -euo pipefail
cd "$(dirname "$0")/.."
source .ci/lib.sh

step "kekbit-std: examples, as separate processes"
cargo build -p kekbit-std --examples --locked
examples=target/debug/examples
KEKBIT_ROOT=$(mktemp -d "${TMPDIR:-/tmp}/kekbit-ci-std.XXXXXX")
export KEKBIT_ROOT
trap 'rm -rf "$KEKBIT_ROOT"' EXIT

# echo: what echo_in reads from stdin, echo_out prints.
timeout 60 "$examples/echo_out" >"$KEKBIT_ROOT/echo.out" &
out_pid=$!
printf 'hello\nkekbit\n' | timeout 60 "$examples/echo_in"
wait "$out_pid"
diff <(printf 'hello\nkekbit\n') "$KEKBIT_ROOT/echo.out"

# req/rep: every request gets its reply.
timeout 60 "$examples/rep" &
rep_pid=$!
timeout 60 "$examples/req" 1000 | tail -n 1 | grep -q '^1000 round trips'
wait "$rep_pid"

# chat: each side prints what the other typed.
(sleep 1; echo 'hi bob'; sleep 2) | timeout 60 "$examples/chat" alice bob >"$KEKBIT_ROOT/alice.out" &
chat_pid=$!
(sleep 1; echo 'hi alice'; sleep 2) | timeout 60 "$examples/chat" bob alice >"$KEKBIT_ROOT/bob.out"
wait "$chat_pid"
grep -qx 'bob: hi alice' "$KEKBIT_ROOT/alice.out"
grep -qx 'alice: hi bob' "$KEKBIT_ROOT/bob.out"
echo "examples ok"

step "miri: kekbit-std unit tests that do not map files"
if ! have_nightly || ! ensure_components nightly miri rust-src; then
    skipped "miri: the nightly toolchain with miri and rust-src could not be installed"
    exit 0
fi
cargo +nightly miri setup >/dev/null
cargo +nightly miri test -p kekbit-std --lib
