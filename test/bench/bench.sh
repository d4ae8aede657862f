#!/usr/bin/env bash
# kiln's benchmarks: kiln against ko on the same function, base and
# registry; Node and Python build+push; kiln dev edit → ready per language;
# a 20-function stack; Java build+push, runtime sizes and startup. Prints
# Markdown tables (see test/bench/main.go). Run through: make bench.
#
# ko and BuildKit (the dockerfile suite's peer) are installed for the
# benchmark only, into .cache/tools (gitignored). BuildKit is built from
# test/bench/buildkit, a module that only requires it: go install refuses
# BuildKit's module.
# BENCH_RUNS sets the measured runs per case and tool (default 5); further
# arguments go to the benchmark, e.g. -only dev,stack. The cluster suite
# runs the Kubernetes binaries in $KILN_K8S_BIN (make kubernetes).
set -euo pipefail
cd "$(dirname "$0")/../.."

ko_version=v0.19.1
buildkit_version=v0.34.2
tools=$PWD/.cache/tools
kiln=${KILN_BIN:-$PWD/bin/kiln}

if [ ! -x "$tools/ko" ] || [ "$("$tools/ko" version 2>/dev/null)" != "$ko_version" ]; then
  echo "bench: installing ko $ko_version into $tools" >&2
  GOBIN=$tools GOFLAGS=-buildvcs=false go install "github.com/google/ko@$ko_version"
fi

if [ ! -x "$tools/buildctl" ] || ! "$tools/buildkitd" --version 2>/dev/null | grep -qF " $buildkit_version"; then
  echo "bench: building BuildKit $buildkit_version into $tools" >&2
  (cd test/bench/buildkit && CGO_ENABLED=0 GOFLAGS=-buildvcs=false go build -trimpath -o "$tools/" \
    -ldflags "-X github.com/moby/buildkit/version.Version=$buildkit_version" \
    github.com/moby/buildkit/cmd/buildkitd github.com/moby/buildkit/cmd/buildctl)
fi

# The benchmark runs a copy of kiln and the watchdogs beside it, so that a
# rebuild of bin/ during the run does not change what is measured.
snapshot=$(mktemp -d)
trap 'rm -rf "$snapshot"' EXIT
cp "$kiln" "$snapshot/kiln"
cp "$(dirname "$kiln")"/kiln-watchdog-* "$snapshot/"

go build -o "$tools/kiln-bench" ./test/bench
"$tools/kiln-bench" -kiln "$snapshot/kiln" -ko "$tools/ko" \
  -buildkitd "$tools/buildkitd" -buildctl "$tools/buildctl" -kubernetes "${KILN_K8S_BIN:-}" \
  -runs "${BENCH_RUNS:-5}" "$@"
