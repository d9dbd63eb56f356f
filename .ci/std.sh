#!/usr/bin/env bash
# kekbit-std beyond `cargo test --workspace` (which already runs its unit
# tests, doctests and the cross-process tests in tests/):
#  1. its examples, run as the README says, in pairs of processes;
#  2. the journal's ten-million-record test, in release (debug runs one
#     million), and a short run of the journal_latency example;
#  3. its unit tests under miri (those that map files are ignored there).
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
# Each side says its line, then keeps its input open until it has heard the
# other's (at most 30 s), so a slow start on a loaded machine cannot lose it.
say_then_listen() { # LINE EXPECTED OUTFILE
    echo "$1"
    for _ in $(seq 300); do
        grep -qx "$2" "$3" 2>/dev/null && return 0
        sleep 0.1
    done
}
say_then_listen 'hi bob' 'bob: hi alice' "$KEKBIT_ROOT/alice.out" |
    timeout 60 "$examples/chat" alice bob >"$KEKBIT_ROOT/alice.out" &
chat_pid=$!
say_then_listen 'hi alice' 'alice: hi bob' "$KEKBIT_ROOT/bob.out" |
    timeout 60 "$examples/chat" bob alice >"$KEKBIT_ROOT/bob.out"
wait "$chat_pid"
grep -qx 'bob: hi alice' "$KEKBIT_ROOT/alice.out"
grep -qx 'alice: hi bob' "$KEKBIT_ROOT/bob.out"
echo "examples ok"

step "kekbit-std: journals, ten million records and the latency example, in release"
cargo test --release -p kekbit-tests --test journal_ten_million --locked -- --ignored
cargo run --release -p kekbit-std --example journal_latency --locked -- 200000 "$KEKBIT_ROOT"

step "miri: kekbit-std unit tests that do not map files"
if ! have_nightly || ! ensure_components nightly miri rust-src; then
    skipped "miri: the nightly toolchain with miri and rust-src could not be installed"
    exit 0
fi
cargo +nightly miri setup >/dev/null
cargo +nightly miri test -p kekbit-std --lib
