#!/usr/bin/env bash
# Builds Yunying (release) and runs the platform with demo data: the region's
# 16 member institutions, demo accounts (printed once, kept in
# yunying-data/demo-accounts.txt) and synthetic studies, DICOMweb on
# http://127.0.0.1:8080/dicom-web, and the web app (study list and viewer)
# at http://127.0.0.1:8080/. Extra arguments go to `yunying serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup-deps.sh
./scripts/build-web.sh
cargo build --release --locked --bin yunying
BIN="${CARGO_TARGET_DIR:-target}/release/yunying"
exec "$BIN" serve --demo "$@"
