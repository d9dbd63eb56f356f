#!/usr/bin/env bash
# Cargo's runner for the firmware: boots ELF on QEMU machine MACHINE, with
# semihosting for output and the exit status. A defmt build's output (binary
# frames) is decoded by `defmt-print`.
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
machine=$1
elf=$2
qemu=(qemu-system-arm -machine "$machine" -display none -monitor none -serial null
    -semihosting-config enable=on,target=native -kernel "$elf")
if [ "${KEKBIT_QEMU_REALTIME:-0}" = 0 ]; then
    qemu+=(-icount shift=6,align=off,sleep=off)
fi
if grep -qa '\.defmt' "$elf"; then
    if ! command -v defmt-print >/dev/null; then
        echo "qemu-run.sh: $elf logs with defmt; install the decoder: cargo install defmt-print --locked" >&2
        exit 1
    fi
    "${qemu[@]}" | defmt-print -e "$elf"
else
    exec "${qemu[@]}"
fi
