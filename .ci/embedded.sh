#!/usr/bin/env bash
# The firmware in embedded/, booted on emulated boards under QEMU: the
# Cortex-M0 (microbit), the Cortex-M3 (lm3s6965evb) and the Cortex-M4F
# (mps2-an386), then the defmt build on the M4F, decoded by defmt-print.
# Each run must exit 0 and print every check's PASS line; a hang hits the
# timeout and fails the step. Installs qemu-system-arm (apt-get), the thumb
# targets and defmt-print when they are missing, or says SKIPPED and why.
set -euo pipefail
cd "$(dirname "$0")/.."
source .ci/lib.sh

# Seconds one board may take (a run takes a few seconds).
BOARD_TIMEOUT=${BOARD_TIMEOUT:-300}
# target:machine, as embedded/.cargo/config.toml maps them.
BOARDS=(thumbv6m-none-eabi:microbit thumbv7m-none-eabi:lm3s6965evb thumbv7em-none-eabihf:mps2-an386)
CHECKS=(static-buffer interrupt-writer interrupt-reader stack)

install_qemu() {
    command -v apt-get >/dev/null || return 1
    local sudo=()
    if [ "$(id -u)" != 0 ]; then
        command -v sudo >/dev/null || return 1
        sudo=(sudo -n)
    fi
    export DEBIAN_FRONTEND=noninteractive
    timeout 900 "${sudo[@]}" apt-get update -qq &&
        timeout 900 "${sudo[@]}" apt-get install -y -qq --no-install-recommends qemu-system-arm
}

millis() { date +%s%3N; }

# Runs `cargo run` for one target with a timeout, keeps its output in $log,
# and checks the exit status and every check's PASS line.
run_board() { # TARGET MACHINE LABEL [CARGO ARGS...]
    local target=$1 machine=$2 label=$3
    shift 3
    local log="$logs/$label.log" t0 status=0
    t0=$(millis)
    timeout --kill-after=10 "$BOARD_TIMEOUT" \
        cargo run --release --locked --target "$target" "$@" >"$log" || status=$?
    local ms=$(($(millis) - t0))
    cat "$log"
    if [ "$status" = 124 ] || [ "$status" = 137 ]; then
        echo "embedded: $label ($machine) hung: no exit within ${BOARD_TIMEOUT}s" >&2
        exit 1
    fi
    if [ "$status" != 0 ]; then
        echo "embedded: $label ($machine) exited with status $status" >&2
        exit 1
    fi
    for check in "${CHECKS[@]}"; do
        if ! grep -q "^PASS $check:" "$log"; then
            echo "embedded: $label ($machine) exited 0 but printed no 'PASS $check' line" >&2
            exit 1
        fi
    done
    grep -qx "${#CHECKS[@]} passed, 0 failed" "$log" || {
        echo "embedded: $label ($machine): no '${#CHECKS[@]} passed, 0 failed' line" >&2
        exit 1
    }
    printf -- '--- %s on %s: %d.%03ds\n' "$label" "$machine" $((ms / 1000)) $((ms % 1000))
}

step "embedded: firmware on QEMU (microbit, lm3s6965evb, mps2-an386)"
if ! command -v qemu-system-arm >/dev/null; then
    echo "qemu-system-arm missing: installing it with apt-get"
    if ! install_qemu >/dev/null || ! command -v qemu-system-arm >/dev/null; then
        skipped "embedded: qemu-system-arm is missing and could not be installed with apt-get"
        exit 0
    fi
fi
qemu-system-arm --version | head -n 1
if ! ensure_targets stable "${EMBEDDED_TARGETS[@]}"; then
    skipped "embedded: rustup could not add ${EMBEDDED_TARGETS[*]}"
    exit 0
fi
machines=$(qemu-system-arm -machine help)

logs=$(mktemp -d "${TMPDIR:-/tmp}/kekbit-ci-embedded.XXXXXX")
trap 'rm -rf "$logs"' EXIT
cd embedded
for board in "${BOARDS[@]}"; do
    target=${board%%:*} machine=${board#*:}
    if ! grep -q "^$machine " <<<"$machines"; then
        skipped "embedded: this qemu-system-arm has no $machine machine"
        continue
    fi
    step "embedded: $machine ($target)"
    cargo build --release --locked --target "$target"
    run_board "$target" "$machine" "$target"
done

step "embedded: the defmt build on mps2-an386, decoded by defmt-print"
if ! command -v defmt-print >/dev/null; then
    echo "defmt-print missing: installing it"
    timeout 1800 cargo install defmt-print --locked >/dev/null 2>&1 || true
fi
cargo build --release --locked --target thumbv7em-none-eabihf --features defmt
if command -v defmt-print >/dev/null; then
    run_board thumbv7em-none-eabihf mps2-an386 defmt --features defmt
else
    # Still prove it links, runs and passes; only the decoding is skipped.
    status=0
    KEKBIT_DEFMT_RAW=1 timeout --kill-after=10 "$BOARD_TIMEOUT" \
        cargo run --release --locked --target thumbv7em-none-eabihf --features defmt \
        >"$logs/defmt.raw" || status=$?
    if [ "$status" != 0 ]; then
        echo "embedded: the defmt build exited with status $status" >&2
        exit 1
    fi
    skipped "embedded: defmt-print could not be installed; the defmt build ran and exited 0 ($(wc -c <"$logs/defmt.raw") bytes of frames), undecoded"
fi
echo "embedded: every board passed"
