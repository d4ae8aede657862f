# kiln: build, test, demo, benchmark. See README.md.
GO       ?= go
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
GOFLAGS_BUILD := -trimpath -buildvcs=false
LDFLAGS  := -s -w
ARCHES   := amd64 arm64
WATCHDOGS := $(foreach a,$(ARCHES),bin/kiln-watchdog-linux-$(a))
DEMO_PORT ?= 8080

.PHONY: all build test unit unit-nonroot e2e fuzz bench demo lint clean

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
	KILN_BIN=$(CURDIR)/bin/kiln $(GO) test -count=1 -tags e2e -timeout 20m ./test/e2e/ ./runtime-images/...

## bench: kiln against ko (Go) and BuildKit (Dockerfiles) on one registry; prints tables
bench: build
	KILN_BIN=$(CURDIR)/bin/kiln ./test/bench/bench.sh

## executor-image-lock: pin the executor images' toolchains and Debian
## packages anew (executorimage/images.lock.json); rebuild kiln after
executor-image-lock: bin/kiln
	bin/kiln executor image lock --out executorimage

## demo: build kiln, build the sample Go function, run it, call it, stop it
demo: build
	DEMO_PORT=$(DEMO_PORT) ./scripts/demo.sh

clean:
	rm -rf bin
