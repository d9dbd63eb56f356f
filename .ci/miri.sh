#!/usr/bin/env bash
# The core under miri: every test that does not map a file, on x86-64 and on
# a big-endian target (s390x), so the little-endian format is checked where
# loads and stores byte-swap. Two models of pointer aliasing:
#  - stacked borrows (the default) for everything but `read_only`, whose
#    channel lives in read-only memory, which stacked borrows cannot hand to
#    `AtomicU32::from_ptr` at all;
#  - tree borrows for `read_only`, where miri reports any non-`Relaxed`
#    atomic load of read-only memory as undefined behaviour.
# Release builds too (`--release`): a defect once showed only with debug
# assertions off.
set -euo pipefail
cd "$(dirname "$0")/.."
source .ci/lib.sh
if ! have_nightly || ! ensure_components nightly miri rust-src; then
    skipped "miri: the nightly toolchain with miri and rust-src could not be installed"
    exit 0
fi
cargo +nightly miri setup >/dev/null

step "miri: kekbit-nostd (x86-64, stacked borrows)"
cargo +nightly miri test -p kekbit-nostd -- --skip a_reader_only_loads_relaxed

step "miri: kekbit-nostd, read-only memory (tree borrows)"
MIRIFLAGS="${MIRIFLAGS:-} -Zmiri-tree-borrows" \
    cargo +nightly miri test -p kekbit-nostd --test read_only

step "miri: kekbit-nostd, release build (debug assertions off)"
cargo +nightly miri test -p kekbit-nostd --release --lib --tests -- --skip a_reader_only_loads_relaxed

step "miri: kekbit-nostd on a big-endian target (s390x)"
cargo +nightly miri test -p kekbit-nostd --target s390x-unknown-linux-gnu --lib --tests \
    -- --skip a_reader_only_loads_relaxed

step "miri: kekbit-kv's map entries (its one unsafe: thin heap blocks)"
cargo +nightly miri test -p kekbit-kv --lib map::
