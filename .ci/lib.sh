# Shared helpers for the CI step scripts; sourced, not run.
# shellcheck shell=bash

# Prints a section banner with the step's name.
step() { printf '\n==> %s\n' "$*"; }

# Prints the one-line notice for a step that cannot run here, and returns 0.
skipped() { printf 'SKIPPED: %s\n' "$*"; }

# Whether the nightly toolchain is installed, installing it if possible.
have_nightly() {
    rustup run nightly rustc --version >/dev/null 2>&1 && return 0
    rustup toolchain install nightly --profile minimal >/dev/null 2>&1
}

# Adds rustup targets to a toolchain when missing; fails if that is impossible.
ensure_targets() {
    local toolchain=$1; shift
    local installed
    installed=$(rustup target list --installed --toolchain "$toolchain" 2>/dev/null) || return 1
    for target in "$@"; do
        grep -qx "$target" <<<"$installed" || rustup target add --toolchain "$toolchain" "$target" || return 1
    done
}

# Adds rustup components to a toolchain when missing.
ensure_components() {
    local toolchain=$1; shift
    rustup component add --toolchain "$toolchain" "$@" >/dev/null 2>&1
}

export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}
THUMB_TARGETS=(thumbv6m-none-eabi thumbv7em-none-eabihf)
# The embedded firmware's targets: one QEMU board each (embedded/README.md).
EMBEDDED_TARGETS=(thumbv6m-none-eabi thumbv7m-none-eabi thumbv7em-none-eabihf)
