#!/usr/bin/env bash
# Runs every fuzz target for SECONDS (default 60) from the committed seed
# corpus, in a scratch copy so the repository stays clean. A crash stops
# the run with the failing input in ops/fuzz/artifacts/<target>/.
#
#   bash ops/fuzz/run.sh [SECONDS] [TARGET...]
#
# Needs cargo-fuzz and a nightly toolchain (installed when missing).
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds="${1:-60}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(query_checksum form_body metadata_xml archive bbb_xml)
fi
if ! rustup toolchain list | grep -q '^nightly'; then
  echo "Installing the nightly toolchain (cargo fuzz needs it)"
  rustup toolchain install nightly --profile minimal
fi
if ! command -v cargo-fuzz >/dev/null 2>&1; then
  echo "Installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi
cargo +nightly fuzz build -O --fuzz-dir ops/fuzz
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
for target in "${targets[@]}"; do
  echo "== fuzzing $target for ${seconds}s"
  mkdir -p "$scratch/$target"
  log="$scratch/$target.log"
  status=0
  cargo +nightly fuzz run -O --fuzz-dir ops/fuzz "$target" \
    "$scratch/$target" "ops/fuzz/corpus/$target" -- \
    -max_total_time="$seconds" -rss_limit_mb=2048 -max_len=262144 -print_final_stats=1 \
    >"$log" 2>&1 || status=$?
  grep -E '^(Done|stat::number_of_executed_units)' "$log" || true
  if [ "$status" -ne 0 ]; then
    tail -40 "$log" >&2
    echo "fuzz target $target failed; the input is in ops/fuzz/artifacts/$target/" >&2
    exit 1
  fi
done
