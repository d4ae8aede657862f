//go:build e2e

// Package e2e is kiln's end-to-end suite: it runs the kiln binary named by
// KILN_BIN (make e2e builds it) against the real distribution registry, the
// real go command, `kiln run`, and skopeo, umoci and runc.
//
// The function's inner port (8082) and the watchdog's are fixed per run, so
// no test here calls t.Parallel: at most one function runs at a time.
package e2e

import (
	"crypto/sha256"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var (
	// kilnBin is the kiln executable under test.
	kilnBin string
	// repoRoot is the kiln repository, for testdata/.
	repoRoot string
	// warmCache is a kiln cache directory shared by the cases that do not
	// test caching, so the base and the samples are built once.
	warmCache string
	// dockerConfig is an empty DOCKER_CONFIG, so no credentials of the
	// machine reach kiln.
	dockerConfig string
	// configHome and openfaasConfig are XDG_CONFIG_HOME and
	// OPENFAAS_CONFIG, so that the local gateways' logins go there, not
	// into the machine's ~/.config/kiln and ~/.openfaas.
	configHome, openfaasConfig string
)

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	repoRoot = root
	kilnBin = os.Getenv("KILN_BIN")
	if kilnBin == "" {
		kilnBin = filepath.Join(repoRoot, "bin", "kiln")
	}
	if _, err := os.Stat(kilnBin); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: no kiln binary (%v); run: make e2e (or set KILN_BIN)\n", err)
		return 1
	}
	tmp, err := os.MkdirTemp("", "kiln-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(tmp)
	warmCache = filepath.Join(tmp, "warm-cache")
	dockerConfig = filepath.Join(tmp, "docker-config")
	configHome, openfaasConfig = filepath.Join(tmp, "config"), filepath.Join(tmp, "openfaas")
	if err := os.MkdirAll(dockerConfig, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	// kiln builds the samples in place: it must not write into them.
	before, err := treeDigest(filepath.Join(repoRoot, "testdata"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	code := m.Run()
	after, err := treeDigest(filepath.Join(repoRoot, "testdata"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if after != before {
		fmt.Fprintf(os.Stderr, "e2e: testdata/ changed during the run (kiln wrote into a handler folder?):\n--- before\n%s--- after\n%s", before, after)
		return 1
	}
	return code
}

// treeDigest lists every path under dir with its mode and content hash.
func treeDigest(dir string) (string, error) {
	var sb strings.Builder
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		sum := ""
		if d.Type().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			sum = fmt.Sprintf("%x", sha256.Sum256(b))
		}
		rel, _ := filepath.Rel(dir, p)
		fmt.Fprintf(&sb, "%s %s %s\n", info.Mode(), rel, sum)
		return nil
	})
	return sb.String(), err
}
