//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/kiln-build/kiln/publish"
	"github.com/kiln-build/kiln/test/registrytest"
)

// TestRegistryFaults pushes through a proxy that spoils a share of the
// requests (500s, 503s, resets, stalls): the pushes make a bounded number
// of requests, and every tag kiln reported is whole, blob by blob. Then
// the proxy goes silent: the push fails with one line within
// --registry-timeout.
func TestRegistryFaults(t *testing.T) {
	reg := startRegistry(t)
	proxy, err := registrytest.StartProxy(reg.Host, registrytest.Faults{Rate: 0.15, Stall: 300 * time.Millisecond}, 3)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { proxy.Close() })
	ctx := context.Background()
	o := kilnOpts{cache: warmCache}
	const repo, pushes = "e2e/faults", 5
	ok := 0
	for i := range pushes {
		tag := fmt.Sprintf("v%d", i)
		r := kiln(t, o, "build", sample(goHello), "--lang", "golang-middleware", "--image", proxy.Host+"/"+repo+":"+tag,
			"--push", "--registry-timeout", "10s", "--build-label", "push="+tag)
		if r.code != 0 {
			t.Logf("push %d failed, as it may:\n%s", i, r.stderr)
			checkOneLineError(t, r, 1, []string{proxy.Host}, true)
			if code, _, err := reg.ManifestDigest(ctx, repo, tag); err != nil || code != http.StatusNotFound {
				if err := reg.VerifyTag(ctx, repo, tag); err != nil {
					t.Errorf("failed push left tag %s: %v", tag, err)
				}
			}
			continue
		}
		ok++
		if err := reg.VerifyTag(ctx, repo, tag); err != nil {
			t.Errorf("pushed tag %s: %v", tag, err)
		}
		_, digest, err := reg.ManifestDigest(ctx, repo, tag)
		if err != nil || !strings.HasSuffix(strings.TrimSpace(r.stdout), "@"+digest) {
			t.Errorf("registry digest of %s = %s (%v), kiln printed %s", tag, digest, err, r.stdout)
		}
	}
	t.Logf("%d of %d pushes went through; %d faults in %d requests", ok, pushes, proxy.Injected(), proxy.Requests())
	if ok == 0 {
		t.Error("no push went through 15% of faults")
	}
	if n := proxy.Requests(); n > pushes*100 {
		t.Errorf("%d pushes made %d requests, want a bounded number", pushes, n)
	}

	proxy.SetFaults(registrytest.Faults{Silent: true})
	r := kiln(t, o, "build", sample(goHello), "--lang", "golang-middleware", "--image", proxy.Host+"/"+repo+":silent",
		"--push", "--registry-timeout", "3s")
	t.Logf("silent registry: exit %d after %s:\n%s", r.code, r.took.Round(time.Millisecond), r.stderr)
	checkOneLineError(t, r, 1, []string{proxy.Host, "sent nothing for 3s"}, false)
	if r.took > 20*time.Second {
		t.Errorf("push to a silent registry took %s, want about --registry-timeout 3s (plus the build)", r.took)
	}
}

// TestConcurrentLocalBuilds runs 8 kiln processes, 5 builds each, into
// one local image store and one cache: every build that printed a digest
// left its image named in the store, index.json stays whole, and a
// damaged index.json is rebuilt by the next build.
func TestConcurrentLocalBuilds(t *testing.T) {
	cache := t.TempDir()
	o := kilnOpts{cache: cache}
	// Warm: the base and the handler's layers, built once.
	mustKiln(t, o, "build", sample(goHello), "--lang", "golang-middleware", "--image", "e2e/conc-warm")
	store := publish.NewLayout(filepath.Join(cache, "images"))
	const procs, rounds = 8, 5
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failures []string
	fail := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		failures = append(failures, fmt.Sprintf(format, args...))
	}
	start := time.Now()
	for p := range procs {
		wg.Go(func() {
			image := fmt.Sprintf("e2e/conc%d", p)
			for round := range rounds {
				ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
				cmd := kilnCommand(ctx, o, "build", sample(goHello), "--lang", "golang-middleware", "--image", image,
					"--build-label", fmt.Sprintf("round=%d-%d", p, round), "--json")
				out, err := cmd.Output()
				cancel()
				if err != nil {
					fail("%s round %d: %v\n%s", image, round, err, out)
					continue
				}
				var reports []buildReport
				if err := json.Unmarshal(out, &reports); err != nil || len(reports) != 1 {
					fail("%s round %d: printed %s", image, round, out)
					continue
				}
				if !strings.HasPrefix(reports[0].Image, image+"@sha256:") {
					fail("%s round %d: printed %s, want the image as named, %s@sha256:...", image, round, reports[0].Image, image)
				}
				// A success means the image is there.
				img, err := lookup(store, image)
				if err != nil {
					fail("%s round %d: exit 0, but: %v", image, round, err)
					continue
				}
				if d, _ := img.Digest(); d.String() != reports[0].Digest {
					fail("%s round %d: the store names %s, kiln printed %s", image, round, d, reports[0].Digest)
				}
			}
		})
	}
	wg.Wait()
	t.Logf("%d builds by %d processes in %s", procs*rounds, procs, time.Since(start).Round(time.Millisecond))
	for _, f := range failures {
		t.Error(f)
	}
	index := filepath.Join(cache, "images", "index.json")
	b := readFile(t, index)
	var m struct{ Manifests []json.RawMessage }
	if err := json.Unmarshal(b, &m); err != nil || len(m.Manifests) != procs+1 {
		t.Fatalf("index.json: %d entries, %v; want %d\n%s", len(m.Manifests), err, procs+1, b)
	}

	// A truncated index.json is rebuilt, and every image keeps its name.
	writeFile(t, index, b[:len(b)/3])
	mustKiln(t, o, "build", sample(goHello), "--lang", "golang-middleware", "--image", "e2e/conc-after")
	for p := range procs {
		image := fmt.Sprintf("e2e/conc%d", p)
		img, err := lookup(store, image)
		if err != nil {
			t.Errorf("after the damage: %v", err)
			continue
		}
		if err := validate.Image(img); err != nil {
			t.Errorf("validate.Image(%s) = %v", image, err)
		}
	}
	if _, err := os.Stat(index); err != nil {
		t.Fatal(err)
	}
}

func lookup(store *publish.Layout, image string) (v1.Image, error) {
	ref, err := name.ParseReference(image)
	if err != nil {
		return nil, err
	}
	return store.Lookup(ref)
}
