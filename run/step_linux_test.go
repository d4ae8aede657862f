package run

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// stepBase is the probe layer under a layer with files to change.
func stepBase(t *testing.T) []v1.Layer {
	t.Helper()
	l, err := newLayer(
		dirEntry("data", 0o755),
		fileEntry("data/keep", 0o644, "keep"),
		fileEntry("data/gone", 0o644, "gone"),
		dirEntry("data/old", 0o755),
		fileEntry("data/old/a", 0o644, "a"),
		fileEntry("data/old/b", 0o644, "b"),
		dirEntry("run", 0o755),
	)
	if err != nil {
		t.Fatal(err)
	}
	return []v1.Layer{probeLayer, l}
}

// stepOptions runs steps with a cache of the test's own; out collects
// the command's output.
func stepOptions(t *testing.T, cacheDir string, out io.Writer) []Option {
	t.Helper()
	return []Option{WithCacheDir(cacheDir), WithStdout(out), WithStderr(out), WithGracePeriod(5 * time.Second)}
}

// layerEntries lists a layer's entries: type, name, mode, owner, time
// and content or link target.
func layerEntries(t *testing.T, l v1.Layer) []string {
	t.Helper()
	rc, err := l.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var got []string
	tr := tar.NewReader(rc)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return got
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		desc := fmt.Sprintf("%c %s %o %d:%d %d", hdr.Typeflag, hdr.Name, hdr.Mode, hdr.Uid, hdr.Gid, hdr.ModTime.Unix())
		if len(b) > 0 {
			desc += " " + string(b)
		}
		if hdr.Linkname != "" {
			desc += " -> " + hdr.Linkname
		}
		got = append(got, desc)
	}
}

func probeStep(args ...string) StepSpec {
	return StepSpec{Args: append([]string{"probe"}, args...), Env: []string{"PATH=/usr/local/bin:/usr/bin:/bin"}}
}

func TestStepLayer(t *testing.T) {
	requireNamespaces(t)
	ctx := context.Background()
	epoch := time.Unix(1_600_000_000, 0)
	spec := probeStep("fs",
		"write", "/data/new", "new", ";",
		"rm", "/data/gone", ";",
		"rm", "/data/old", ";", "mkdir", "/data/old", ";", "write", "/data/old/c", "c", ";",
		"mkdir", "/srv/app", ";", "write", "/srv/app/f", "f", ";", "link", "/srv/app/f", "/srv/app/g", ";",
		"symlink", "f", "/srv/app/s", ";",
		"chown", "1000:2000", "/srv/app/f")
	spec.Epoch = epoch
	e := epoch.Unix()
	want := []string{
		fmt.Sprintf("5 data/ 755 0:0 %d", e),
		fmt.Sprintf("0 data/.wh.gone 0 0:0 %d", e),
		fmt.Sprintf("0 data/new 644 0:0 %d new", e),
		fmt.Sprintf("5 data/old/ 755 0:0 %d", e),
		fmt.Sprintf("0 data/old/.wh..wh..opq 0 0:0 %d", e),
		fmt.Sprintf("0 data/old/c 644 0:0 %d c", e),
		fmt.Sprintf("5 srv/ 755 0:0 %d", e),
		fmt.Sprintf("5 srv/app/ 755 0:0 %d", e),
		fmt.Sprintf("0 srv/app/f 644 1000:2000 %d f", e),
		fmt.Sprintf("1 srv/app/g 644 1000:2000 %d -> srv/app/f", e),
		fmt.Sprintf("2 srv/app/s 777 0:0 %d -> f", e),
	}
	for name, opts := range stepModes(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var digests []v1.Hash
			// Twice, in caches of their own: a deterministic command
			// gives one layer.
			for range 2 {
				var out syncBuffer
				l, err := Step(ctx, stepBase(t), spec, append(stepOptions(t, t.TempDir(), &out), opts...)...)
				if err != nil {
					t.Fatalf("Step() = %v\n%s", err, out.String())
				}
				if diff := cmp.Diff(want, layerEntries(t, l)); diff != "" {
					t.Errorf("Step() layer entries (-want +got):\n%s", diff)
				}
				d, err := l.Digest()
				if err != nil {
					t.Fatal(err)
				}
				digests = append(digests, d)
			}
			if digests[0] != digests[1] {
				t.Errorf("Step() twice = layers %s and %s, want one digest", digests[0], digests[1])
			}
		})
	}
}

// stepModes are the ways a step runs: as root with the container's ids
// shifted (the default) or, on a cache without idmapped mounts, without a
// user namespace; without root, with the caller's subordinate ids.
func stepModes(t *testing.T) map[string][]Option {
	t.Helper()
	if os.Geteuid() != 0 {
		if _, err := lookupSubIDs("/etc/subuid", "/etc/subgid"); err != nil {
			t.Skipf("no subordinate ids: %v", err)
		}
		return map[string][]Option{"subordinate ids": nil}
	}
	return map[string][]Option{"shifted": nil, "unshifted": {withoutShift()}}
}
