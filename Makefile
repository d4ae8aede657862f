# kiln: build, test, demo, benchmark. See README.md.
GO       ?= go
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
GOFLAGS_BUILD := -trimpath -buildvcs=false
LDFLAGS  := -s -w
ARCHES   := amd64 arm64
WATCHDOGS := $(foreach a,$(ARCHES),bin/kiln-watchdog-linux-$(a))
DEMO_PORT ?= 8080

.PHONY: all build test unit unit-nonroot e2e e2e-long fuzz bench demo lint clean cluster kubernetes console-vendor browser

all: build

## build: bin/kiln and the watchdog it puts in every image, for each platform
build: bin/kiln $(WATCHDOGS)

bin/kiln: FORCE
	CGO_ENABLED=0 $(GO) build $(GOFLAGS_BUILD) -ldflags '$(LDFLAGS) -X main.version=$(VERSION)' -o $@ ./cmd/kiln

# The watchdog's bytes must not depend on the version or the machine: its
# layer is shared by every image kiln builds. It speaks HTTP/1.1 only:
# nethttpomithttp2 leaves net/http's HTTP/2 out, 0.4 MB.
# Inlining is off in crypto/... (used by jwt_auth's one signature check per
# request) and in the watchdog's own package (thin glue around net/http,
# which keeps its inlining): 0.26 MB less, which keeps the watchdog every
# image carries under its 6 MB bound.
bin/kiln-watchdog-linux-%: FORCE
	CGO_ENABLED=0 GOOS=linux GOARCH=$* $(GO) build $(GOFLAGS_BUILD) -tags nethttpomithttp2 -gcflags='crypto/...=-l' -gcflags='github.com/kiln-build/kiln/cmd/watchdog=-l' -ldflags '$(LDFLAGS)' -o $@ ./cmd/watchdog

FORCE:

## test: static checks, unit tests, the fuzz targets, then the end-to-end suite
test: lint unit unit-nonroot fuzz e2e

STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags e2e ./...
	$(GO) run $(STATICCHECK) ./...
	$(GO) run $(STATICCHECK) -tags e2e ./...
	$(GO) vet -tags cluster ./test/cluster/...
	$(GO) run $(STATICCHECK) -tags cluster ./test/cluster/...

unit:
	$(GO) test -count=1 ./...

## unit-nonroot: the run package's tests (sandbox, escapes, network, RUN
## steps) again as an unprivileged user, nobody, as most users run kiln:
## about 30 s. nobody gets subordinate ids for the steps meanwhile
## (300000-365535 in /etc/subuid and /etc/subgid, removed after) unless it
## has some.
unit-nonroot:
	@if [ "$$(id -u)" != 0 ]; then echo "unit-nonroot: not root, so make unit ran them unprivileged"; exit 0; fi; \
	dir=$$(mktemp -d) && chmod 755 "$$dir" && \
	$(GO) test -c -o "$$dir/run.test" ./run && CGO_ENABLED=0 $(GO) build -o "$$dir/probe" ./run/testdata/probe && \
	added=; for f in /etc/subuid /etc/subgid; do \
		grep -qs '^nobody:' $$f || { echo 'nobody:300000:65536' >> $$f; added="$$added $$f"; }; \
	done; \
	cd /tmp && setpriv --reuid=65534 --regid=65534 --clear-groups \
		env HOME="$$dir" TMPDIR=/tmp KILN_TEST_PROBE="$$dir/probe" "$$dir/run.test" -test.count=1; \
	rc=$$?; rm -rf "$$dir"; for f in $$added; do sed -i '/^nobody:300000:65536$$/d' $$f; done; exit $$rc

## fuzz: the stack parser, the layer unpacker's tar reading and the
## watchdog's configuration, 30 s each (minimising a new input is capped at
## 5 s of it): about 2 minutes with the builds.
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime 30s -fuzzminimizetime 5s ./stack/
	$(GO) test -run '^$$' -fuzz '^FuzzApplyTar$$' -fuzztime 30s -fuzzminimizetime 5s ./run/
	$(GO) test -run '^$$' -fuzz '^FuzzLoadConfig$$' -fuzztime 30s -fuzzminimizetime 5s ./cmd/watchdog/

## e2e: real registry, real runc, real go; needs build first
e2e: build
	KILN_BIN=$(CURDIR)/bin/kiln $(GO) test -count=1 -tags e2e -timeout 20m -skip '$(E2E_LONG)' ./test/e2e/ ./runtime-images/...

## e2e-long: the end-to-end cases that take minutes each, kept out of make
## test: the executor images built, pushed and run with every toolchain
## (about 4 min warm, 6 cold: Go, Node, JDK and Python downloads), the
## language cache shared through a registry with fresh caches (about 2.5
## min), and a build as nobody on a read-only root with Go's cache cold
## (about 1 min). Time budget: 15 min on a fresh machine.
E2E_LONG := ^(TestExecutorImages|TestLanguageCacheRepo|TestExecutorReadOnlyRoot)$$
e2e-long: build
	KILN_BIN=$(CURDIR)/bin/kiln $(GO) test -count=1 -tags e2e -timeout 20m -run '$(E2E_LONG)' ./test/e2e/

## bench: kiln against ko (Go) and BuildKit (Dockerfiles) on one registry, kiln
## job in a real cluster, the executor's memory; prints tables. BENCH=cluster
## (comma-separated suites) runs some only.
bench: build kubernetes
	KILN_BIN=$(CURDIR)/bin/kiln KILN_K8S_BIN=$(K8S_BIN) ./test/bench/bench.sh $(if $(BENCH),-only $(BENCH))

## executor-image-lock: pin the executor images' toolchains and Debian
## packages anew (executorimage/images.lock.json); rebuild kiln after
executor-image-lock: bin/kiln
	bin/kiln executor image lock --out executorimage

## demo: build kiln, build the sample Go function, run it, call it, stop it
demo: build
	DEMO_PORT=$(DEMO_PORT) ./scripts/demo.sh

## kubernetes: kube-apiserver, kube-controller-manager, kube-scheduler and
## kubelet from the Go module proxy into .cache/tools/kubernetes-VERSION,
## once per version: 7 to 10 minutes and 2.6 GB (one link) cold on 2 cores.
K8S_VERSION := $(shell awk '$$1 == "k8s.io/kubernetes" && $$2 ~ /^v/ { print $$2 }' test/cluster/k8s/go.mod)
K8S_BIN := $(CURDIR)/.cache/tools/kubernetes-$(K8S_VERSION)
kubernetes:
	test/cluster/k8s/build.sh $(K8S_BIN)

## cluster: a real Kubernetes (etcd, the control plane, kubelet, containerd,
## runc) on 127.0.0.1 and the tests that need one. Time budget: <= 20 min on
## a fresh machine including the cold Kubernetes build (measured: 5.6 min
## for Kubernetes, 6.3 min for the suite); about 4.5 min once the binaries
## and the executor images' toolchains are cached.
cluster: build kubernetes
	KILN_BIN=$(CURDIR)/bin/kiln KILN_K8S_BIN=$(K8S_BIN) $(GO) test -count=1 -v -tags cluster -timeout 15m ./test/cluster/...

## console-vendor: vendor uPlot, the console's charts, from npm into
## console/assets/vendor, after checking the package's pinned sha512
UPLOT_VERSION   := 1.6.32
UPLOT_INTEGRITY := sha512-KIMVnG68zvu5XXUbC4LQEPnhwOxBuLyW1AHtpm6IKTXImkbLgkMy+jabjLgSLMasNuGGzQm/ep3tOkyTxpiQIw==
console-vendor:
	./scripts/console-vendor.sh $(UPLOT_VERSION) $(UPLOT_INTEGRITY)

## browser: the console in headless Chromium (test/browser) against a real
## kiln up --local and kiln dev --local: about 60 s on 2 cores, the Go
## functions' builds included; each test may take 5 min at most. Installs
## Debian's chromium if missing.
browser: build
	@command -v chromium >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; }
	cd test/browser && npm ci --no-audit --no-fund --silent && KILN_BIN=$(CURDIR)/bin/kiln node --test --test-concurrency=1 --test-timeout=300000

clean:
	rm -rf bin
