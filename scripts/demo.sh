#!/usr/bin/env bash
# Build the sample Go function with kiln, run it with `kiln run`, call it,
# print its answer and stop it.
set -euo pipefail
cd "$(dirname "$0")/.."
kiln=${KILN:-bin/kiln}
port=${DEMO_PORT:-8080}
image=kiln.local/demo/hello:latest

echo "==> kiln build testdata/functions/go-hello --lang golang-middleware --image $image"
"$kiln" build testdata/functions/go-hello --lang golang-middleware --image "$image"

echo "==> kiln run $image --port $port"
"$kiln" run "$image" --port "$port" &
pid=$!
trap 'kill -TERM $pid 2>/dev/null || true; wait $pid 2>/dev/null || true' EXIT

for _ in $(seq 1 100); do
  if curl -fsS "http://127.0.0.1:$port/_/health" >/dev/null 2>&1; then break; fi
  if ! kill -0 $pid 2>/dev/null; then echo "kiln run exited early" >&2; exit 1; fi
  sleep 0.1
done

echo "==> curl -d 'it works' http://127.0.0.1:$port/"
answer=$(curl -fsS -d 'it works' "http://127.0.0.1:$port/")
echo
echo "    $answer"
echo
kill -TERM $pid
wait $pid || true
trap - EXIT
echo "==> stopped"
