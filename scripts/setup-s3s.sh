#!/usr/bin/env bash
# Installs s3s-fs (a small S3-compatible server that keeps buckets as folders)
# once into Yunying's tool cache; the S3 blob store tests start it on loopback.
# Pinned to 0.14.1: later versions need a newer rustc. The first install
# compiles for several minutes; afterwards this only prints the path.
# Usage: scripts/setup-s3s.sh   (prints the binary's path on stdout)
# The cache folder can be moved with YUNYING_TOOLS_DIR
# (default ~/.cache/yunying/tools); the binary is $YUNYING_TOOLS_DIR/bin/s3s-fs.
set -euo pipefail

version=0.14.1
root="${YUNYING_TOOLS_DIR:-$HOME/.cache/yunying/tools}"
bin="$root/bin/s3s-fs"

# cargo records what it installed under the root in .crates.toml.
if [[ -x "$bin" ]] && grep -qs "\"s3s-fs $version " "$root/.crates.toml"; then
  echo "$bin"
  exit 0
fi

if ! command -v cargo >/dev/null; then
  echo "setup-s3s: cargo is missing; install Rust (https://rustup.rs) and run again" >&2
  exit 1
fi

echo "setup-s3s: installing s3s-fs $version into $root (takes several minutes)" >&2
mkdir -p "$root"
cargo install --quiet --root "$root" "s3s-fs@$version" --features binary --locked --force >&2
if [[ ! -x "$bin" ]]; then
  echo "setup-s3s: cargo install finished but $bin is missing" >&2
  exit 1
fi
echo "$bin"
