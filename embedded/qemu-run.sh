#!/usr/bin/env bash
# Cargo's runner for the firmware (see .cargo/config.toml): boots ELF on the
# QEMU machine MACHINE, with semihosting for output and the exit status
# (0 only if every check passed). A defmt build's output, binary frames, is
# decoded by `defmt-print` (`cargo install defmt-print --locked`);
# KEKBIT_DEFMT_RAW=1 passes the frames through undecoded instead.
#
# Time is counted in instructions (-icount): each instruction advances the
# virtual clock by 2^6 ns, so SysTick fires after a set number of
# instructions, at any instruction (not only between translated blocks), and
# the run is as fast as QEMU can go and the same on every run.
# KEKBIT_QEMU_REALTIME=1 runs on the host's clock instead: ticks then land
# between translated blocks, at moments that change from run to run.
#
# Usage: qemu-run.sh MACHINE ELF
set -euo pipefail
if [ $# -ne 2 ]; then
    echo "usage: $0 MACHINE ELF" >&2
    exit 2
fi
machine=$1
elf=$2
qemu=(qemu-system-arm -machine "$machine" -display none -monitor none -serial null
    -semihosting-config enable=on,target=native -kernel "$elf")
if [ "${KEKBIT_QEMU_REALTIME:-0}" = 0 ]; then
    qemu+=(-icount shift=6,align=off,sleep=off)
fi
if grep -qa '\.defmt' "$elf" && [ "${KEKBIT_DEFMT_RAW:-0}" = 0 ]; then
    if ! command -v defmt-print >/dev/null; then
        echo "$0: $elf logs with defmt; install the decoder with" \
            "'cargo install defmt-print --locked', or set KEKBIT_DEFMT_RAW=1" >&2
        exit 1
    fi
    "${qemu[@]}" | defmt-print -e "$elf"
else
    exec "${qemu[@]}"
fi
