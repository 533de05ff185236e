#!/usr/bin/env bash
# Runs Switchboard's whole test suite: unit and integration tests of every
# crate against real SQLite and PostgreSQL, simulated BBB servers over real
# HTTP, and an independent BBB client library (bigbluebutton-js) end to end.
#
# Needs: Python 3 with venv and PyPI access (the generated admin client),
# PostgreSQL reachable at $SWITCHBOARD_TEST_POSTGRES_URL (default
# postgres://postgres@127.0.0.1:5432/postgres), Redis at
# $SWITCHBOARD_TEST_REDIS_URL (default redis://127.0.0.1:6379; job queue and
# scale-out tests), Node.js with npm. `.ci/run` installs and starts them.
set -euo pipefail
cd "$(dirname "$0")/.."

export SWITCHBOARD_TEST_POSTGRES_URL="${SWITCHBOARD_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}"

# Drop test databases that earlier runs left behind.
if command -v psql >/dev/null 2>&1; then
  psql "$SWITCHBOARD_TEST_POSTGRES_URL" -Atqc \
    "select datname from pg_database where datname like 'switchboard\_test\_%' or datname like 'switchboard\_bench\_%'" 2>/dev/null |
    while read -r db; do
      psql "$SWITCHBOARD_TEST_POSTGRES_URL" -qc "drop database if exists \"$db\"" >/dev/null 2>&1 || true
    done
fi

if [ ! -d ops/clients/js/node_modules/bigbluebutton-js ]; then
  echo "Installing the JavaScript BBB client used by the end-to-end test..."
  npm ci --prefix ops/clients/js --no-audit --no-fund --loglevel=error
fi

# The Python admin client generated from the committed OpenAPI spec
# (openapi-python-client from PyPI); quick when the spec is unchanged.
bash ops/clients/python/generate.sh

if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast
else
  cargo test --workspace --no-fail-fast
fi
