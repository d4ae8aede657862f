# kiln: build, test, demo, benchmark. See README.md.
GO       ?= go
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
GOFLAGS_BUILD := -trimpath -buildvcs=false
LDFLAGS  := -s -w
ARCHES   := amd64 arm64
WATCHDOGS := $(foreach a,$(ARCHES),bin/kiln-watchdog-linux-$(a))
DEMO_PORT ?= 8080

.PHONY: all build test unit e2e bench demo lint fuzz clean

all: build

## build: bin/kiln and the watchdog it puts in every image, for each platform
build: bin/kiln $(WATCHDOGS)

bin/kiln: FORCE
	CGO_ENABLED=0 $(GO) build $(GOFLAGS_BUILD) -ldflags '$(LDFLAGS) -X main.version=$(VERSION)' -o $@ ./cmd/kiln

# The watchdog's bytes must not depend on the version or the machine: its
# layer is shared by every image kiln builds. It speaks HTTP/1.1 only:
# nethttpomithttp2 leaves net/http's HTTP/2 out, 0.4 MB.
bin/kiln-watchdog-linux-%: FORCE
	CGO_ENABLED=0 GOOS=linux GOARCH=$* $(GO) build $(GOFLAGS_BUILD) -tags nethttpomithttp2 -ldflags '$(LDFLAGS)' -o $@ ./cmd/watchdog

FORCE:

## test: static checks, unit tests, then the end-to-end suite
test: lint unit e2e

STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags e2e ./...
	$(GO) run $(STATICCHECK) ./...
	$(GO) run $(STATICCHECK) -tags e2e ./...

unit:
	$(GO) test -count=1 ./...

## e2e: real registry, real runc, real go; needs build first
e2e: build
	KILN_BIN=$(CURDIR)/bin/kiln $(GO) test -count=1 -tags e2e -timeout 20m ./test/e2e/ ./runtime-images/...

## bench: kiln against ko on the same function and registry; prints a table
bench: build
	KILN_BIN=$(CURDIR)/bin/kiln ./test/bench/bench.sh

## demo: build kiln, build the sample Go function, run it, call it, stop it
demo: build
	DEMO_PORT=$(DEMO_PORT) ./scripts/demo.sh

clean:
	rm -rf bin

## fuzz: each fuzz target for 30 s (about a minute per line with the build)
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzApplyTar$$' -fuzztime 30s ./run/
	$(GO) test -run '^$$' -fuzz '^FuzzLoadConfig$$' -fuzztime 30s ./cmd/watchdog/
