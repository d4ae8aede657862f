#!/usr/bin/env bash
# Vendors uPlot (the console's charts) from npm into console/assets/vendor:
# its minified script and style and its licence, after checking the
# package's sha512 against the one pinned in the Makefile (npm's
# dist.integrity), then writes each file's sha512 to INTEGRITY, which
# console's tests check, and into index.html's integrity attributes.
# Usage: console-vendor.sh VERSION INTEGRITY
set -euo pipefail
version=$1 want=$2
cd "$(dirname "$0")/.."
dest=console/assets/vendor
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "uplot@$version" >/dev/null)
tgz="$tmp/uplot-$version.tgz"
got="sha512-$(openssl dgst -sha512 -binary "$tgz" | base64 -w0)"
if [ "$got" != "$want" ]; then
  echo "uplot@$version: the package's integrity is $got, want $want" >&2
  exit 1
fi
tar -xzf "$tgz" -C "$tmp"
mkdir -p "$dest"
cp "$tmp/package/dist/uPlot.iife.min.js" "$tmp/package/dist/uPlot.min.css" "$dest/"
cp "$tmp/package/LICENSE" "$dest/uPlot.LICENSE"
sri() { echo "sha512-$(openssl dgst -sha512 -binary "$1" | base64 -w0)"; }
{
  echo "# uplot@$version from npm, package $want"
  for f in uPlot.iife.min.js uPlot.min.css uPlot.LICENSE; do echo "$f $(sri "$dest/$f")"; done
} > "$dest/INTEGRITY"
for f in uPlot.iife.min.js uPlot.min.css; do
  sed -i -E "s#(vendor/$f\" integrity=\")[^\"]*#\1$(sri "$dest/$f")#" console/assets/index.html
done
echo "vendored uplot@$version into $dest"
