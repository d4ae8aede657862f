//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/kiln-build/kiln/test/registrytest"
)

// TestCrossRepositoryMounts pushes two functions of one stack to two
// repositories of one registry: the layers they share (base and watchdog)
// are uploaded once and mounted into the second repository.
func TestCrossRepositoryMounts(t *testing.T) {
	reg := startRegistry(t)
	dir := t.TempDir()
	stackFile := fmt.Sprintf(`provider:
  name: openfaas
functions:
  a-hello:
    lang: golang-middleware
    handler: %s
    image: %s/mounts/a-hello:v1
  b-main:
    lang: go
    handler: %s
    image: %s/mounts/b-main:v1
`, sample(goHello), reg.Host, sample(goMain), reg.Host)
	if err := os.WriteFile(filepath.Join(dir, "stack.yml"), []byte(stackFile), 0o644); err != nil {
		t.Fatal(err)
	}
	mark := reg.Mark()
	reports := buildJSONAll(t, kilnOpts{cache: t.TempDir(), dir: dir}, "-f", "stack.yml", "--push", "--parallel", "1")
	reqs := requestsSince(t, reg, mark)
	if len(reports) != 2 {
		t.Fatalf("kiln build printed %d images, want 2", len(reports))
	}
	var shared []string
	for _, l := range reports[0].Layers {
		if slices.ContainsFunc(reports[1].Layers, func(o layerReport) bool { return o.Digest == l.Digest }) {
			shared = append(shared, l.Digest)
		}
	}
	if len(shared) < 2 {
		t.Fatalf("the two images share %d layers, want the base's and the watchdog's", len(shared))
	}
	uploads := registrytest.BlobUploads(reqs)
	for _, d := range shared {
		if n := count(uploads, d); n != 1 {
			t.Errorf("shared layer %s uploaded %d times, want once\n%s", d, n, registrytest.Summary(reqs))
		}
	}
	if got := registrytest.Mounts(reqs); !sameSet(got, shared) {
		t.Errorf("mounted blobs = %v, want the shared layers %v", got, shared)
	}
	for _, r := range reports {
		validateRemote(t, r.Image)
	}
}

func count(ss []string, s string) int {
	n := 0
	for _, x := range ss {
		if x == s {
			n++
		}
	}
	return n
}

// buildJSONAll runs kiln build --json and returns every image it reports.
func buildJSONAll(t *testing.T, o kilnOpts, args ...string) []buildReport {
	t.Helper()
	r := mustKiln(t, o, append(append([]string{"build"}, args...), "--json")...)
	var reports []buildReport
	if err := json.Unmarshal([]byte(r.stdout), &reports); err != nil {
		t.Fatalf("kiln build --json printed no JSON array: %v\n%s", err, r)
	}
	return reports
}
