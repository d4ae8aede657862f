#!/usr/bin/env bash
# Builds kube-apiserver, kube-controller-manager, kube-scheduler and kubelet
# at the version this module pins into DIR (default: the repository's
# .cache/tools/kubernetes-VERSION), and does nothing if all four are there:
# a cold build takes about 7 minutes and 3 GB on 2 cores.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
version=$(awk '$1 == "k8s.io/kubernetes" && $2 ~ /^v/ { print $2 }' "$here/go.mod")
[ -n "$version" ] || { echo "build.sh: no k8s.io/kubernetes version in $here/go.mod" >&2; exit 1; }
dir=${1:-$here/../../../.cache/tools/kubernetes-$version}
bins=(kube-apiserver kube-controller-manager kube-scheduler kubelet)

missing=0
for b in "${bins[@]}"; do [ -x "$dir/$b" ] || missing=1; done
[ "$missing" = 1 ] || exit 0

minor=${version#v*.}; minor=${minor%%.*}
major=${version#v}; major=${major%%.*}
# Without the version the servers report v0.0.0-master+$Format:%H$, which
# kubectl and client-go's discovery cannot parse.
ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$version"
ldflags+=" -X k8s.io/component-base/version.gitMajor=$major -X k8s.io/component-base/version.gitMinor=$minor"
ldflags+=" -X k8s.io/component-base/version.gitTreeState=clean"

# Into a temporary directory beside DIR, then renamed: an interrupted build
# never leaves a DIR that looks complete.
mkdir -p "$(dirname "$dir")"
tmp=$(mktemp -d "$dir.tmp.XXXXXX")
chmod 755 "$tmp"
trap 'rm -rf "$tmp"' EXIT
start=$(date +%s)
(cd "$here" && CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$tmp/" \
	"${bins[@]/#/k8s.io/kubernetes/cmd/}")
rm -rf "$dir"
mv "$tmp" "$dir"
trap - EXIT
echo "build.sh: Kubernetes $version built into $dir in $(( $(date +%s) - start )) s"
