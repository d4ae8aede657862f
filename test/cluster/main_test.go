//go:build cluster

// Package cluster holds the tests that need a real Kubernetes: one cluster
// (package kube) and one registry per test binary, started by TestMain.
// make cluster runs them; KILN_BIN names the kiln binary and KILN_K8S_BIN
// the Kubernetes binaries.
package cluster

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/kiln-build/kiln/test/cluster/kube"
	"github.com/kiln-build/kiln/test/registrytest"
)

var (
	// cluster is the test cluster; its pods pull from reg over plain HTTP.
	cluster *kube.Cluster
	reg     *registrytest.Registry
	// busybox is Debian's static busybox as an image in reg.
	busybox string
	// kilnBin is the kiln executable under test; repoRoot the repository.
	kilnBin, repoRoot string
)

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) (code int) {
	ctx := context.Background()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		return fail(err)
	}
	repoRoot = root
	kilnBin = os.Getenv("KILN_BIN")
	if kilnBin == "" {
		kilnBin = filepath.Join(repoRoot, "bin", "kiln")
	}
	if _, err := os.Stat(kilnBin); err != nil {
		return fail(fmt.Errorf("no kiln binary (%w); run: make cluster (or set KILN_BIN)", err))
	}
	tmp, err := os.MkdirTemp("", "kiln-cluster-test-")
	if err != nil {
		return fail(err)
	}
	defer os.RemoveAll(tmp)
	reg, err = registrytest.Start(ctx, filepath.Join(tmp, "registry"))
	if err != nil {
		return fail(err)
	}
	defer reg.Close()
	if busybox, err = pushBusybox(ctx); err != nil {
		return fail(err)
	}

	start := time.Now()
	cluster, err = kube.Start(ctx, kube.WithInsecureRegistry(reg.Host))
	defer func() {
		stop := time.Now()
		if err := cluster.Close(); err != nil {
			fmt.Fprintf(os.Stderr, "cluster: teardown: %v\n", err)
			code = 1
		}
		fmt.Fprintf(os.Stderr, "cluster: teardown took %s\n", time.Since(stop).Round(time.Millisecond))
	}()
	if err != nil {
		if cluster != nil {
			fmt.Fprint(os.Stderr, cluster.Logs())
		}
		return fail(err)
	}
	fmt.Fprintf(os.Stderr, "cluster: up in %s (%s)\n", time.Since(start).Round(time.Millisecond), cluster.Dir)
	run := time.Now()
	code = m.Run()
	fmt.Fprintf(os.Stderr, "cluster: tests took %s\n", time.Since(run).Round(time.Millisecond))
	if code != 0 {
		fmt.Fprint(os.Stderr, cluster.Logs())
	}
	return code
}

func fail(err error) int {
	fmt.Fprintln(os.Stderr, "cluster:", err)
	return 1
}

// pushBusybox pushes kube.BusyboxImage to the test registry and returns
// its reference by digest.
func pushBusybox(ctx context.Context) (string, error) {
	img, err := kube.BusyboxImage()
	if err != nil {
		return "", err
	}
	ref, err := name.ParseReference(reg.Host+"/kiln-test/busybox:1", name.Insecure)
	if err != nil {
		return "", err
	}
	if err := remote.Write(ref, img, remote.WithContext(ctx)); err != nil {
		return "", fmt.Errorf("pushing busybox to %s: %w", ref, err)
	}
	d, err := img.Digest()
	if err != nil {
		return "", err
	}
	return ref.Context().Digest(d.String()).String(), nil
}
