#!/usr/bin/env bash
# Installs what Yunying's build and tests need on a Debian machine, when it
# is missing: a C toolchain (for the bundled SQLite and OpenJPEG), Python's
# venv, DCMTK (a reference DICOM toolkit used by the tests), OpenJPH's tools
# (an independent HTJ2K encoder the pixel tests decode), OpenJPEG's tools,
# cmake (CharLS), a CJK font (electronic film text), poppler-utils (the film
# tests read the PDF), openssl (test certificates), and the Python packages of the black-box tests in a
# private virtual environment; with --test also Chromium (browser tests) and
# s3s-fs (the S3 blob store's tests; scripts/setup-s3s.sh).
# Node.js (>= 20.19, for the web app) is expected on the machine.
# Safe to run again: it only installs what is absent.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v cc >/dev/null || need+=(build-essential)
command -v pkg-config >/dev/null || need+=(pkg-config)
command -v cmake >/dev/null || need+=(cmake)
python3 -c 'import venv, ensurepip' 2>/dev/null || need+=(python3-venv)
command -v dcmdump >/dev/null || need+=(dcmtk)
command -v ojph_compress >/dev/null || need+=(openjph-tools)
command -v opj_decompress >/dev/null || need+=(libopenjp2-tools)
[[ -e /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ]] || need+=(fonts-wqy-microhei)
command -v pdfinfo >/dev/null || need+=(poppler-utils)
command -v openssl >/dev/null || need+=(openssl)
command -v curl >/dev/null || need+=(curl)
command -v unzip >/dev/null || need+=(unzip)
# The browser tests (./scripts/test.sh) drive Debian's Chromium.
if [[ "${1:-}" == "--test" ]]; then
  command -v chromium >/dev/null || need+=(chromium)
fi
if ((${#need[@]})); then
  echo "setup-deps: installing ${need[*]}"
  SUDO=""
  [[ $(id -u) -eq 0 ]] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null; then
  echo "setup-deps: cargo is missing; install Rust (https://rustup.rs) and run again" >&2
  exit 1
fi

# The S3 blob store's tests run against s3s-fs (built once, cached).
if [[ "${1:-}" == "--test" ]]; then
  ./scripts/setup-s3s.sh >/dev/null
fi

# Python tools of the black-box tests, pinned, in a venv outside the clone.
VENV="${YUNYING_VENV:-$HOME/.cache/yunying/venv}"
REQ=tests/python/requirements.txt
STAMP="$VENV/.requirements.sha256"
want=$(sha256sum "$REQ" | cut -d' ' -f1)
if [[ ! -x "$VENV/bin/python" || ! -f "$STAMP" || "$(cat "$STAMP")" != "$want" ]]; then
  echo "setup-deps: preparing the Python test environment in $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check -r "$REQ"
  echo "$want" > "$STAMP"
fi
