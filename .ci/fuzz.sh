#!/usr/bin/env bash
# Fuzzing: build every cargo-fuzz target, check the committed seed corpus is
# what the generator writes, replay it through every target, then fuzz each
# target for FUZZ_SECONDS (default 60) with AddressSanitizer on nightly.
# Without nightly the targets are built and run with `-s none` on stable and
# the sanitizer is reported SKIPPED. Then `roundtrip` once more, built with
# `-O` (debug assertions off). A crash, a leak or a hang (more than 10 s on
# one input) fails the step; the input is left in fuzz/artifacts/<target>/.
set -euo pipefail

cd "$(dirname "$0")/../fuzz"
seconds="${FUZZ_SECONDS:-60}"
# FUZZ_NIGHTLY=0 takes the stable path even where nightly exists (to test it).
want_nightly="${FUZZ_NIGHTLY:-1}"

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "cargo-fuzz missing: installing it"
    if ! cargo install cargo-fuzz --locked; then
        echo "SKIPPED: fuzz: cargo-fuzz could not be installed"
        exit 0
    fi
fi

if [ "$want_nightly" != 0 ] && { cargo +nightly --version >/dev/null 2>&1 ||
    timeout 300 rustup toolchain install nightly --profile minimal >/dev/null 2>&1; }; then
    toolchain=(+nightly)
    sanitizer=(-s address)
else
    echo "SKIPPED: fuzz: AddressSanitizer needs a nightly toolchain, which is missing; fuzzing without a sanitizer on stable"
    toolchain=()
    sanitizer=(-s none)
fi

mapfile -t targets < <(cargo fuzz list)
echo "fuzz targets: ${targets[*]}"
cargo "${toolchain[@]}" fuzz build "${sanitizer[@]}"

# The committed seeds must be exactly what the generator writes.
fresh="$(mktemp -d)"
trap 'rm -rf "$fresh"' EXIT
cargo run --quiet --example gen_seeds -- "$fresh/seeds"
for seed in "$fresh"/seeds/*/seed-*; do
    committed="corpus/${seed#"$fresh"/seeds/}"
    if ! cmp -s "$seed" "$committed"; then
        echo "fuzz: $committed is not what examples/gen_seeds.rs writes; regenerate it" >&2
        exit 1
    fi
done
for committed in corpus/*/seed-*; do
    if [ ! -f "$fresh/seeds/${committed#corpus/}" ]; then
        echo "fuzz: $committed is not written by examples/gen_seeds.rs; remove it" >&2
        exit 1
    fi
done

flags=(-timeout=10 -rss_limit_mb=2048 -print_final_stats=1)
for target in "${targets[@]}"; do
    echo "== $target: replaying the seed corpus"
    log="$fresh/$target-seeds.log"
    if ! cargo "${toolchain[@]}" fuzz run "${sanitizer[@]}" "$target" "corpus/$target" \
        -- -runs=0 "${flags[@]}" >"$log" 2>&1; then
        tail -n 80 "$log"
        echo "fuzz: $target failed on its seed corpus" >&2
        exit 1
    fi
    grep -E '^Done ' "$log" || true
done
for target in "${targets[@]}"; do
    echo "== $target: fuzzing for ${seconds}s"
    # New inputs go to a scratch folder; the seeds are read, not written.
    mkdir -p "$fresh/corpus/$target"
    log="$fresh/$target.log"
    if ! cargo "${toolchain[@]}" fuzz run "${sanitizer[@]}" "$target" "$fresh/corpus/$target" "corpus/$target" \
        -- -max_total_time="$seconds" "${flags[@]}" >"$log" 2>&1; then
        tail -n 80 "$log"
        echo "fuzz: $target failed; the input is in fuzz/artifacts/$target/" >&2
        exit 1
    fi
    grep -E '^(#[0-9]+ +DONE|stat::number_of_executed_units|Done )' "$log" || true
done
# `roundtrip` again, built with `-O`: release mode without debug assertions,
# as users build. A defect once showed only there (issue 10: a store past the
# region); the target's guarded allocation catches such a store either way.
nodebug=(-O --target-dir target/no-debug-assertions)
echo "== roundtrip (-O, debug assertions off): seeds, then fuzzing for ${seconds}s"
log="$fresh/roundtrip-O.log"
mkdir -p "$fresh/corpus/roundtrip-O"
if ! cargo "${toolchain[@]}" fuzz run "${sanitizer[@]}" "${nodebug[@]}" roundtrip \
    "$fresh/corpus/roundtrip-O" corpus/roundtrip -- -max_total_time="$seconds" "${flags[@]}" \
    >"$log" 2>&1; then
    tail -n 80 "$log"
    echo "fuzz: roundtrip (-O) failed; the input is in fuzz/artifacts/roundtrip/" >&2
    exit 1
fi
grep -E '^(#[0-9]+ +DONE|stat::number_of_executed_units|Done )' "$log" || true
echo "fuzz: ${#targets[@]} targets built, seeds replayed, ${seconds}s each without a crash (and roundtrip with -O)"
