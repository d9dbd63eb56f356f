#!/usr/bin/env bash
# Every publishable crate at its MSRV (its `rust-version`), as a user gets it:
# built from its package (what `cargo package` would upload), with the
# dependency versions that cargo's MSRV-aware resolver picks for that Rust
# version, by that toolchain's own cargo and rustc. Each crate is checked
# with its default features and with all of them, on the host and on every
# target its `[package.metadata.ci] msrv-targets` lists.
#
# Why not `cargo +MSRV check -p CRATE` in the workspace: the workspace's lock
# file is made for the newest toolchain (dev-dependencies and benches need
# that), and an old cargo may not even load the other members' manifests.
# So each package gets a lock file of its own here, from
# `cargo generate-lockfile` with `CARGO_RESOLVER_INCOMPATIBLE_RUST_VERSIONS=fallback`:
# for every dependency, the newest version whose `rust-version` admits the
# crate's MSRV. A dependency that declares no `rust-version` cannot be
# avoided that way; if it needs a newer Rust, the check fails here, and the
# crate's version requirement must exclude it (see heapless in kekbit-nostd).
#
# The crate is built much as a dependency is, with its lints capped: cargo
# caps them at `allow` for dependencies; `warn` here, because cargo learns
# from rustc's warnings which crate types a target supports. Lints are the
# clippy step's business, on the current toolchain: older compilers lint
# differently (1.81 wants `unsafe` blocks around the SSE4.2 intrinsics,
# which are safe to call inside `#[target_feature]` functions since 1.87).
#
# Usage: bash .ci/msrv.sh [--toolchain VERSION] [CRATE...]
#   CRATE...             only these crates (default: every publishable one)
#   --toolchain VERSION  check with VERSION instead of each crate's MSRV,
#                        resolving dependencies for VERSION: to find a crate's
#                        MSRV, lower VERSION until the check fails.
set -euo pipefail
cd "$(dirname "$0")/.."
source .ci/lib.sh

override=
wanted=()
while [ $# -gt 0 ]; do
    case $1 in
        --toolchain) override=${2:?--toolchain needs a version}; shift 2 ;;
        *) wanted+=("$1"); shift ;;
    esac
done

work=target/msrv
mapfile -t crates < <(publishable_crates)
if [ ${#crates[@]} -eq 0 ]; then
    echo "msrv: no publishable crate in the workspace" >&2
    exit 1
fi

step "MSRV: packaging the publishable crates"
rm -rf "$work/pkg/package" "$work/src"
mkdir -p "$work/src"
packages=()
for line in "${crates[@]}"; do
    IFS=$'\t' read -r name _ <<<"$line"
    packages+=(-p "$name")
done
cargo package --no-verify --allow-dirty --locked --quiet --target-dir "$work/pkg" "${packages[@]}"
declare -A src
for line in "${crates[@]}"; do
    IFS=$'\t' read -r name version _ <<<"$line"
    # --touch: a .crate stores one fixed mtime for every file, which would
    # make cargo take changed sources for unchanged ones.
    tar -xz --touch -f "$work/pkg/package/$name-$version.crate" -C "$work/src"
    src[$name]=$PWD/$work/src/$name-$version
done

# Installs a toolchain when missing (minimal profile); fails if rustup cannot.
have_toolchain() {
    RUSTUP_AUTO_INSTALL=0 rustup run "$1" cargo --version >/dev/null 2>&1 && return 0
    rustup toolchain install "$1" --profile minimal >/dev/null 2>&1
}

checked=0
for line in "${crates[@]}"; do
    IFS=$'\t' read -r name version msrv _ features targets deps <<<"$line"
    if [ ${#wanted[@]} -gt 0 ] && [[ " ${wanted[*]} " != *" $name "* ]]; then
        continue
    fi
    if [ "$msrv" = - ]; then
        echo "msrv: $name is publishable but sets no rust-version (its MSRV)" >&2
        exit 1
    fi
    toolchain=${override:-$msrv}
    step "MSRV: $name (rust-version $msrv) with Rust $toolchain"
    if ! have_toolchain "$toolchain"; then
        skipped "msrv $name: rustup could not install Rust $toolchain"
        continue
    fi

    # The package as a workspace of its own; the workspace crates it needs
    # come from their packages too, in place of crates.io.
    dir=${src[$name]}
    {
        printf '\n[workspace]\n'
        if [ "$deps" != - ]; then
            printf '\n[patch.crates-io]\n'
            for dep in ${deps//,/ }; do
                printf '%s = { path = "%s" }\n' "$dep" "${src[$dep]}"
            done
        fi
    } >>"$dir/Cargo.toml"
    ignore=()
    if [ -n "$override" ]; then
        sed -i "s/^rust-version = \".*\"/rust-version = \"$toolchain\"/" "$dir/Cargo.toml"
        ignore=(--ignore-rust-version)
    fi
    # Resolved by the default toolchain's cargo (MSRV-aware since 1.84).
    rm -f "$dir/Cargo.lock"
    CARGO_RESOLVER_INCOMPATIBLE_RUST_VERSIONS=fallback \
        cargo generate-lockfile --manifest-path "$dir/Cargo.toml"

    feature_sets=("")
    [ "$features" != - ] && feature_sets+=(--all-features)
    [ "$targets" = - ] && targets=
    for target in host ${targets//,/ }; do
        target_arg=()
        if [ "$target" != host ]; then
            if ! ensure_targets "$toolchain" "$target"; then
                skipped "msrv $name on $target: rustup could not add it to Rust $toolchain"
                continue
            fi
            target_arg=(--target "$target")
        fi
        for feature_set in "${feature_sets[@]}"; do
            printf -- '-- cargo +%s check %s%s\n' "$toolchain" \
                "${target_arg[*]:-(host)}" "${feature_set:+ $feature_set}"
            RUSTFLAGS="${RUSTFLAGS:-} --cap-lints warn" \
                cargo "+$toolchain" check --locked --quiet "${ignore[@]}" \
                --manifest-path "$dir/Cargo.toml" --target-dir "$PWD/$work/target" \
                "${target_arg[@]}" $feature_set
            checked=$((checked + 1))
        done
    done
done
printf 'MSRV: %s checks passed\n' "$checked"
