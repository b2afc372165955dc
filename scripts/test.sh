#!/usr/bin/env bash
# Runs every test of Yunying: the Rust suites (unit, contract suites on
# SQLite and on PostgreSQL, the real binary over HTTP) and the black-box
# suite with third-party clients against the real binary.
#
# Needs PostgreSQL on 127.0.0.1:5432 with trust auth for user postgres
# (override with YUNYING_TEST_PG=postgres://user@host:port).
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/setup-deps.sh
./scripts/fetch-testdata.sh

export YUNYING_TESTDATA="${YUNYING_TESTDATA:-$HOME/.cache/yunying/testdata}"
export YUNYING_VENV="${YUNYING_VENV:-$HOME/.cache/yunying/venv}"

echo "== cargo test (workspace)"
cargo test --workspace --locked -- --test-threads="${YUNYING_TEST_THREADS:-2}"

echo "== black-box tests (third-party clients against the yunying binary)"
cargo build --locked --bin yunying
BIN="${CARGO_TARGET_DIR:-target}/debug/yunying"
"$YUNYING_VENV/bin/python" -m pytest -q tests/python --yunying-bin "$BIN"
echo "== all tests passed"
