//go:build e2e

package e2e

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// TestTemplateUpLocal serves a function whose lang kiln has no pack for,
// but whose faas-cli template (./template/<lang>/, as faas-cli template
// pull writes it) holds a Dockerfile, through kiln up --local: the
// context is laid out as faas-cli lays out ./build/<fn>, the handler in
// function/, and the Dockerfile engine builds it.
func TestTemplateUpLocal(t *testing.T) {
	reg := startRegistry(t)
	mustKiln(t, kilnOpts{cache: warmCache}, "base", "build", "debian", "--image", reg.Host+"/debian:bookworm", "--output", "registry")

	dir := t.TempDir()
	files := map[string]string{
		"template/bash-classic/template.yml": "language: bash-classic\nfprocess: sh ./handler.sh\n",
		"template/bash-classic/Dockerfile": `ARG REGISTRY
FROM ghcr.io/openfaas/classic-watchdog:0.3.3 AS watchdog
FROM ${REGISTRY}/debian:bookworm
COPY --from=watchdog /fwatchdog /usr/bin/fwatchdog
WORKDIR /home/app
COPY function/ .
# As faas-cli lays it out: the handler in function/, the template beside.
RUN test -f handler.sh && ! test -e template.yml
USER app
ENV fprocess="sh ./handler.sh"
CMD ["fwatchdog"]
`,
		"echo/handler.sh": "#!/bin/sh\necho \"template says: $(cat)\"\n",
		"stack.yml": fmt.Sprintf(`provider:
  name: openfaas
functions:
  tmpl-echo:
    lang: bash-classic
    handler: ./echo
    image: %s/fn/tmpl-echo:1
    build_args:
      REGISTRY: %s
`, reg.Host, reg.Host),
	}
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	port := freePort(t)
	up := startProcess(t, kilnCommand(t.Context(), kilnOpts{cache: warmCache, dir: dir}, "up", "--local", "--port", strconv.Itoa(port), "--no-auth"))
	waitFunction(t, up, port, "tmpl-echo")
	a, err := call(http.MethodPost, port, "/function/tmpl-echo", "hi")
	if want := "template says: hi\n"; err != nil || a.status != 200 || a.body != want {
		t.Errorf("POST /function/tmpl-echo = %d %q, %v; want 200 %q\n%s", a.status, a.body, err, want, up)
	}
}
