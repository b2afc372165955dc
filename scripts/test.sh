#!/usr/bin/env bash
# Runs every test of Yunying: the Rust suites (unit, contract suites on
# SQLite and on PostgreSQL, the real binary over HTTP) and the black-box
# suite with third-party clients against the real binary, and the web app's
# browser tests (playwright-core driving Debian's Chromium; screenshots in
# web/e2e/artifacts).
#
# Needs PostgreSQL on 127.0.0.1:5432 with trust auth for user postgres
# (override with YUNYING_TEST_PG=postgres://user@host:port).
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/setup-deps.sh --test
./scripts/fetch-testdata.sh
# The web app first: the yunying binary built below embeds it.
./scripts/build-web.sh

export YUNYING_TESTDATA="${YUNYING_TESTDATA:-$HOME/.cache/yunying/testdata}"
export YUNYING_VENV="${YUNYING_VENV:-$HOME/.cache/yunying/venv}"
# The S3 store's suite must run here (setup-deps installed s3s-fs), not skip.
export YUNYING_REQUIRE_S3=1

echo "== cargo test (workspace)"
cargo test --workspace --locked -- --test-threads="${YUNYING_TEST_THREADS:-2}"

echo "== black-box tests (third-party clients against the yunying binary)"
cargo build --locked --bin yunying
BIN="${CARGO_TARGET_DIR:-target}/debug/yunying"
"$YUNYING_VENV/bin/python" -m pytest -q tests/python --yunying-bin "$BIN"

echo "== browser tests (the web app in Debian's Chromium, against the yunying binary)"
BIN_ABS=$(realpath "$BIN")
(cd web && YUNYING_BIN="$BIN_ABS" node --test --test-concurrency=1 e2e/)
echo "== all tests passed"
