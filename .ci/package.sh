#!/usr/bin/env bash
# Every publishable crate (every workspace member without `publish = false`)
# packaged as `cargo publish` would upload it, and verified: cargo unpacks
# each .crate and builds it from exactly those files, with the workspace
# crates it depends on served from their own .crates (a local overlay
# registry, as they are not on crates.io yet). So a file the crate needs but
# does not ship (an `include_str!` from outside the crate, say) fails here,
# not after publishing. Then each .crate must hold its readme and both
# licence files, with the workspace's licence texts, and the crates that
# ask docs.rs for special settings must document with them on nightly.
set -euo pipefail
cd "$(dirname "$0")/.."
source .ci/lib.sh

mapfile -t crates < <(publishable_crates)
if [ ${#crates[@]} -eq 0 ]; then
    echo "package: no publishable crate in the workspace" >&2
    exit 1
fi
packages=()
names=()
for line in "${crates[@]}"; do
    IFS=$'\t' read -r name _ <<<"$line"
    packages+=(-p "$name")
    names+=("$name")
done

step "cargo package (verified): ${names[*]}"
# Cargo takes a crate from a registry to be the same whenever its version
# is. The crates that verification gets from cargo's overlay registry
# (kekbit-nostd, when it verifies kekbit-std) would therefore come from
# the last run: from the copy unpacked into $CARGO_HOME/registry/src/-<hash>/,
# and built into the target dir. So verification gets a target dir of its
# own, and both those copies go before each run.
dir=target/package-check
cargo_home=${CARGO_HOME:-$HOME/.cargo}
rm -rf "$dir/package"
for line in "${crates[@]}"; do
    IFS=$'\t' read -r name version _ <<<"$line"
    rm -rf "$cargo_home"/registry/src/-*/"$name-$version"
done
if [ -d "$dir" ]; then
    cargo clean --quiet --target-dir "$dir" "${packages[@]}"
fi
# --allow-dirty: what is checked is the tree as it is (CI's is a clean clone).
cargo package --locked --allow-dirty --target-dir "$dir" "${packages[@]}"

step "package contents: readme and licences"
metadata=$(cargo metadata --no-deps --format-version 1 --locked)
for line in "${crates[@]}"; do
    IFS=$'\t' read -r name version _ <<<"$line"
    crate=$dir/package/$name-$version.crate
    readme=$(python3 -c '
import json, sys
name = sys.argv[1]
pkg = next(p for p in json.load(sys.stdin)["packages"] if p["name"] == name)
print(pkg.get("readme") or "")' "$name" <<<"$metadata")
    if [ -z "$readme" ]; then
        echo "package: $name sets no readme" >&2
        exit 1
    fi
    files=$(tar -tzf "$crate")
    for file in "$readme" LICENSE-MIT LICENSE-APACHE; do
        if ! grep -qx "$name-$version/$file" <<<"$files"; then
            echo "package: $crate lacks $file" >&2
            exit 1
        fi
    done
    for licence in LICENSE-MIT LICENSE-APACHE; do
        if ! tar -xzOf "$crate" "$name-$version/$licence" | cmp -s - "$licence"; then
            echo "package: $licence in $crate differs from the workspace's $licence" >&2
            exit 1
        fi
    done
    printf '%s: %s files, with %s, LICENSE-MIT and LICENSE-APACHE\n' \
        "$crate" "$(wc -l <<<"$files")" "$readme"
done

step "docs as docs.rs builds them"
if ! have_nightly; then
    skipped "docs.rs build: no nightly toolchain"
    exit 0
fi
for name in "${names[@]}"; do
    # [package.metadata.docs.rs]: its feature flags and rustdoc arguments.
    IFS=$'\t' read -r features rustdoc_args < <(python3 -c '
import json, sys
name = sys.argv[1]
pkg = next(p for p in json.load(sys.stdin)["packages"] if p["name"] == name)
rs = ((pkg.get("metadata") or {}).get("docs") or {}).get("rs") or {}
flags = []
if rs.get("all-features"):
    flags.append("--all-features")
if rs.get("features"):
    flags.append("--features=" + ",".join(rs["features"]))
if rs.get("no-default-features"):
    flags.append("--no-default-features")
print(" ".join(flags) or "-", " ".join(rs.get("rustdoc-args", [])) or "-", sep="\t")' "$name" <<<"$metadata")
    [ "$features" = - ] && features=
    [ "$rustdoc_args" = - ] && rustdoc_args=
    printf -- '-- %s: cargo +nightly doc %s, RUSTDOCFLAGS=%s\n' "$name" "${features:-(default features)}" \
        "'${rustdoc_args:-}'"
    # Its own target dir: RUSTDOCFLAGS would otherwise invalidate the
    # workspace's documentation builds.
    RUSTDOCFLAGS="${rustdoc_args} -D warnings" cargo +nightly doc --locked --no-deps --quiet \
        -p "$name" $features --target-dir target/docs.rs
done
