#!/usr/bin/env bash
# Fuzzes the admin API from its own OpenAPI spec with schemathesis (from
# PyPI, into a virtualenv under target/): a fresh `switchboard serve` on a
# temporary SQLite database, an admin token, every check. Fails on any 5xx,
# undocumented status, non-problem error or schema mismatch. Not checked:
# that every schema-valid body is accepted (positive_data_acceptance): the
# API validates more than the schema says (URLs, tag syntax, a server's
# secret), and answers those with a documented 400 problem.
# One worker: with two threads, hypothesis (on CPython 3.11) crashed
# describing a filter (`SystemError: AST constructor recursion depth
# mismatch` from concurrent `ast.parse`), failing a run whose every case
# had passed.
#
#   bash ops/schemathesis/run.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds="${1:-60}"
venv="${SCHEMATHESIS_VENV:-target/schemathesis-venv}"
if [ ! -x "$venv/bin/schemathesis" ]; then
  echo "Installing schemathesis into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet 'schemathesis>=4,<5'
fi
cargo build --quiet -p switchboard-api --bin switchboard
bin="target/debug/switchboard"
data="$(mktemp -d)"
log="$data/serve.log"
cleanup() {
  [ -n "${pid:-}" ] && kill "$pid" 2>/dev/null || true
  rm -rf "$data"
}
trap cleanup EXIT
export SWITCHBOARD_SECRET="schemathesis-secret-0123"
token="$("$bin" --data-dir "$data" tokens create schemathesis --scope admin | tail -1)"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
"$bin" --data-dir "$data" serve --listen "127.0.0.1:$port" --no-workers >"$log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break
  sleep 0.1
done
"$venv/bin/schemathesis" run openapi/switchboard-admin.json \
  --url "http://127.0.0.1:$port/api/v1" \
  --header "Authorization: Bearer $token" \
  --checks all \
  --exclude-checks positive_data_acceptance \
  --max-time "$seconds" \
  --workers 1 \
  --suppress-health-check all \
  --no-color
