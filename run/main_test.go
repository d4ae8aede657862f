package run

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

var (
	// probeLayer holds testdata/probe, built by TestMain, with the
	// /etc/passwd and /etc/group the user tests rely on.
	probeLayer v1.Layer
	// nsErr says why namespaces cannot be created here, if they cannot.
	nsErr error
)

func TestMain(m *testing.M) {
	// The test binary is also the container init, as kiln is.
	if len(os.Args) > 1 && os.Args[1] == InitArg {
		InitMain()
	}
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	// A fuzzing worker runs only the fuzz target, which needs no probe:
	// building one in each worker would eat its time budget.
	if slices.ContainsFunc(os.Args, func(a string) bool { return strings.HasPrefix(a, "-test.fuzzworker") }) {
		return m.Run()
	}
	dir, err := os.MkdirTemp("", "kiln-run-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	// KILN_TEST_PROBE names a probe built beforehand, for a test binary
	// run as a user who has no Go build cache (make unit-nonroot).
	probe := os.Getenv("KILN_TEST_PROBE")
	if probe == "" {
		probe = filepath.Join(dir, "probe")
		build := exec.Command("go", "build", "-o", probe, "./testdata/probe")
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := build.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "building testdata/probe: %v\n%s", err, out)
			return 1
		}
	}
	bin, err := os.ReadFile(probe)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	probeLayer, err = newLayer(
		dirEntry("etc", 0o755),
		fileEntry("etc/passwd", 0o644, "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n"),
		fileEntry("etc/group", 0o644, "root:x:0:\napp:x:1000:\nstaff:x:2000:app\n"),
		dirEntry("tmp", 0o755),
		dirEntry("usr/local/bin", 0o755),
		fileEntry("usr/local/bin/probe", 0o755, string(bin)),
	)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	nsErr = tryNamespaces(probe)
	return m.Run()
}

// entry is one tar entry of a test layer.
type entry struct {
	hdr  tar.Header
	body string
}

var epoch = time.Unix(1_700_000_000, 0)

func fileEntry(name string, mode int64, body string) entry {
	return entry{hdr: tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(body)), ModTime: epoch}, body: body}
}

func dirEntry(name string, mode int64) entry {
	return entry{hdr: tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: mode, ModTime: epoch}}
}

// newLayer writes entries as an uncompressed tar layer.
func newLayer(entries ...entry) (v1.Layer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		if err := tw.WriteHeader(&e.hdr); err != nil {
			return nil, err
		}
		if _, err := io.WriteString(tw, e.body); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	b := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(b)), nil
	}, tarball.WithCompressedCaching)
}

// newImage stacks layers, each given as its entries, on an empty image.
func newImage(t *testing.T, cfg v1.Config, layers ...[]entry) v1.Image {
	t.Helper()
	var ls []v1.Layer
	for _, es := range layers {
		l, err := newLayer(es...)
		if err != nil {
			t.Fatalf("newLayer() = %v", err)
		}
		ls = append(ls, l)
	}
	return withLayers(t, cfg, ls...)
}

func withLayers(t *testing.T, cfg v1.Config, ls ...v1.Layer) v1.Image {
	t.Helper()
	img, err := mutate.AppendLayers(empty.Image, ls...)
	if err != nil {
		t.Fatalf("AppendLayers() = %v", err)
	}
	img, err = mutate.Config(img, cfg)
	if err != nil {
		t.Fatalf("Config() = %v", err)
	}
	return img
}
