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

# Prints one tab-separated line per publishable workspace member (every
# member without `publish = false`), in dependency order:
#   name  version  rust-version  manifest-dir  features  msrv-targets  workspace-deps
# where features are its features other than `default`, msrv-targets come
# from `[package.metadata.ci] msrv-targets`, and workspace-deps are the
# publishable members it needs, directly or not; lists are comma-separated,
# and "-" stands for none (or, for rust-version, for a crate that sets none).
publishable_crates() {
    cargo metadata --no-deps --format-version 1 --locked | python3 -c '
import json, sys
meta = json.load(sys.stdin)
members = set(meta["workspace_members"])
pkgs = {p["name"]: p for p in meta["packages"] if p["id"] in members and p["publish"] != []}
def deps(name, seen):
    for d in pkgs[name]["dependencies"]:
        if d["name"] in pkgs and d["name"] not in seen:
            seen.add(d["name"])
            deps(d["name"], seen)
    return seen
done, order = set(), []
def visit(name):
    if name not in done:
        done.add(name)
        for d in sorted(deps(name, set())):
            visit(d)
        order.append(name)
for name in sorted(pkgs):
    visit(name)
for name in order:
    p = pkgs[name]
    targets = ((p.get("metadata") or {}).get("ci") or {}).get("msrv-targets", [])
    features = sorted(f for f in p["features"] if f != "default")
    cols = [name, p["version"], p["rust_version"] or "-", p["manifest_path"].rsplit("/", 1)[0],
            ",".join(features) or "-", ",".join(targets) or "-", ",".join(sorted(deps(name, set()))) or "-"]
    print("\t".join(cols))
'
}
