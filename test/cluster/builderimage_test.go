//go:build cluster

package cluster

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

var (
	builderOnce sync.Once
	builder     builderRefs
	builderErr  error
)

// builderRefs are the executor images the language tests run.
type builderRefs struct {
	// all is what `kiln executor image build --only all --push` pushed.
	all string
	// withCAs is all with the host's CA certificates: what a cluster
	// whose egress goes through its own CA runs (see withHostCAs).
	withCAs string
}

// builderImages builds kiln's all-languages executor image with the kiln
// under test and pushes it to the test registry, once per test binary.
// The toolchains it downloads are kept in the repository's
// .cache/executor-images, so that only the first run on a machine fetches
// them (about 400 MB).
func builderImages(t *testing.T) builderRefs {
	t.Helper()
	builderOnce.Do(func() { builder, builderErr = makeBuilderImages(t) })
	if builderErr != nil {
		t.Fatal(builderErr)
	}
	return builder
}

func makeBuilderImages(t *testing.T) (builderRefs, error) {
	ctx := context.Background()
	cache := filepath.Join(repoRoot, ".cache", "executor-images")
	start := time.Now()
	repo := reg.Host + "/kiln-test/executor"
	stdout, stderr, err := kiln(t, ctx, repoRoot, nil, "executor", "image", "build", "--only", "all", "--push", repo,
		"--kiln", kilnBin, "--cache-dir", cache, "--progress", "plain")
	if err != nil {
		return builderRefs{}, fmt.Errorf("kiln executor image build: %w\n%s%s", err, stdout, stderr)
	}
	var refs builderRefs
	for line := range strings.Lines(stdout) {
		if f := strings.Fields(line); len(f) == 4 && f[0] == "all" {
			refs.all = f[1]
		}
	}
	if !strings.HasPrefix(refs.all, repo+":all@sha256:") {
		return builderRefs{}, fmt.Errorf("kiln executor image build printed no all image:\n%s", stdout)
	}
	fmt.Fprintf(os.Stderr, "cluster: executor image %s built and pushed in %s\n", refs.all, time.Since(start).Round(time.Millisecond))
	if refs.withCAs, err = withHostCAs(ctx, refs.all); err != nil {
		return builderRefs{}, err
	}
	if err := cluster.Namespace(ctx, jobNamespace, nil); err != nil {
		return builderRefs{}, err
	}
	return refs, nil
}

// hostCAs are the host's CA bundles that the builder images' toolchains
// read: OpenSSL's and Go's, and Java's trust store.
var hostCAs = []string{"/etc/ssl/certs/ca-certificates.crt", "/etc/ssl/certs/java/cacerts"}

// withHostCAs pushes ref with one more layer holding the host's CA
// bundles, and NODE_EXTRA_CA_CERTS pointing Node at them, and returns it
// by digest. The host reaches the package registries (Debian, npm, PyPI,
// Maven Central) through a CA of its own, which the pinned images do not
// trust; a company's cluster does the same with its CAs. The functions
// built are not changed by it: their images hold none of these files.
func withHostCAs(ctx context.Context, ref string) (string, error) {
	base, err := name.ParseReference(ref)
	if err != nil {
		return "", err
	}
	img, err := remote.Image(base, remote.WithContext(ctx))
	if err != nil {
		return "", err
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, d := range []string{"etc/", "etc/ssl/", "etc/ssl/certs/", "etc/ssl/certs/java/"} {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d, Mode: 0o755}); err != nil {
			return "", err
		}
	}
	for _, p := range hostCAs {
		b, err := os.ReadFile(p)
		if err != nil {
			return "", fmt.Errorf("the host's CA certificates: %w", err)
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: strings.TrimPrefix(p, "/"), Mode: 0o644, Size: int64(len(b))}); err != nil {
			return "", err
		}
		if _, err := tw.Write(b); err != nil {
			return "", err
		}
	}
	if err := tw.Close(); err != nil {
		return "", err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf.Bytes())), nil })
	if err != nil {
		return "", err
	}
	if img, err = mutate.AppendLayers(img, layer); err != nil {
		return "", err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return "", err
	}
	cfg := cf.Config
	cfg.Env = append(cfg.Env, "NODE_EXTRA_CA_CERTS="+hostCAs[0])
	if img, err = mutate.Config(img, cfg); err != nil {
		return "", err
	}
	dst, err := name.ParseReference(reg.Host + "/kiln-test/executor:all-cas")
	if err != nil {
		return "", err
	}
	if err := remote.Write(dst, img, remote.WithContext(ctx)); err != nil {
		return "", fmt.Errorf("pushing the executor image with the host's CAs: %w", err)
	}
	d, err := img.Digest()
	if err != nil {
		return "", err
	}
	return dst.Context().Digest(d.String()).String(), nil
}
