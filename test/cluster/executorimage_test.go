//go:build cluster

package cluster

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	languageExecutorOnce sync.Once
	languageExecutor     string
	languageExecutorErr  error
)

// hostLocalCAs are the CA certificates this host trusts beside Debian's.
// Its egress reaches the package registries (Debian, npm, PyPI, Maven
// Central) through a CA of its own, as a company's cluster does through
// its proxy's.
const hostLocalCAs = "/usr/local/share/ca-certificates/*.crt"

// languageExecutorImage builds kiln's all-languages executor image with
// the kiln under test, trusting the host's local CAs (--ca-certificates),
// pushes it to the test registry, once per test binary, and returns it by
// digest.
// The toolchains it downloads are kept in the repository's
// .cache/executor-images, so that only the first run on a machine fetches
// them (about 400 MB).
func languageExecutorImage(t *testing.T) string {
	t.Helper()
	languageExecutorOnce.Do(func() { languageExecutor, languageExecutorErr = makeLanguageExecutorImage(t) })
	if languageExecutorErr != nil {
		t.Fatal(languageExecutorErr)
	}
	return languageExecutor
}

func makeLanguageExecutorImage(t *testing.T) (string, error) {
	ctx := context.Background()
	cache := filepath.Join(repoRoot, ".cache", "executor-images")
	start := time.Now()
	repo := reg.Host + "/kiln-test/executor"
	args := []string{"executor", "image", "build", "--only", "all", "--push", repo, "--kiln", kilnBin, "--cache-dir", cache, "--progress", "plain"}
	cas, err := filepath.Glob(hostLocalCAs)
	if err != nil {
		return "", err
	}
	for _, ca := range cas {
		args = append(args, "--ca-certificates", ca)
	}
	stdout, stderr, err := kiln(t, ctx, repoRoot, nil, args...)
	if err != nil {
		return "", fmt.Errorf("kiln executor image build: %w\n%s%s", err, stdout, stderr)
	}
	var image string
	for line := range strings.Lines(stdout) {
		if f := strings.Fields(line); len(f) == 4 && f[0] == "all" {
			image = f[1]
		}
	}
	if !strings.HasPrefix(image, repo+":all@sha256:") {
		return "", fmt.Errorf("kiln executor image build printed no all image:\n%s", stdout)
	}
	fmt.Fprintf(os.Stderr, "cluster: executor image %s (trusting %d local CA files) built and pushed in %s\n", image, len(cas), time.Since(start).Round(time.Millisecond))
	if err := cluster.Namespace(ctx, jobNamespace, nil); err != nil {
		return "", err
	}
	return image, nil
}
