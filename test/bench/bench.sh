#!/usr/bin/env bash
# kiln against ko on the same function, base and registry; prints a
# Markdown table (see test/bench/main.go). Run through: make bench.
#
# ko is installed for the benchmark only, into .cache/tools (gitignored).
# BENCH_RUNS sets the measured runs per case and tool (default 5).
set -euo pipefail
cd "$(dirname "$0")/../.."

ko_version=v0.19.1
tools=$PWD/.cache/tools
kiln=${KILN_BIN:-$PWD/bin/kiln}

if [ ! -x "$tools/ko" ] || [ "$("$tools/ko" version 2>/dev/null)" != "$ko_version" ]; then
  echo "bench: installing ko $ko_version into $tools" >&2
  GOBIN=$tools GOFLAGS=-buildvcs=false go install "github.com/google/ko@$ko_version"
fi

go build -o "$tools/kiln-bench" ./test/bench
exec "$tools/kiln-bench" -kiln "$kiln" -ko "$tools/ko" -runs "${BENCH_RUNS:-5}" "$@"
