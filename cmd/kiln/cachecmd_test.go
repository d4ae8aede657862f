package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/layers"
)

func kilnCmd(t *testing.T, dir string, args ...string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := newRootCmd(&stdout, &stderr, func(k string) string { return map[string]string{"KILN_CACHE_DIR": dir}[k] })
	if err := execute(context.Background(), cmd, args); err != nil {
		t.Fatalf("kiln %v = %v (stderr %q)", args, err, stderr.String())
	}
	return stdout.String()
}

// TestCacheCommands fills a cache with entries of several kinds and checks
// that `kiln cache ls` counts them all, as `du -sb` does, and that
// `kiln cache prune --all` removes them.
func TestCacheCommands(t *testing.T) {
	if _, err := exec.LookPath("du"); err != nil {
		t.Skip("no du here to compare with")
	}
	ctx := context.Background()
	dir := t.TempDir()
	s, err := cache.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	big := bytes.Repeat([]byte("kiln"), 50000)
	if _, err := s.Put(ctx, layers.NewKey("test").String("a").Sum(), "layer a", func(w io.Writer) error {
		return layers.WriteTar(w, []layers.File{layers.Bytes("f", 0o644, big)})
	}); err != nil {
		t.Fatal(err)
	}
	l, err := s.Tree(ctx, cache.NodeModules, "k", func(d string) error {
		return os.WriteFile(filepath.Join(d, "index.js"), big, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	if err := os.MkdirAll(filepath.Join(dir, "run", "4711"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "run", "4711", "upper"), big, 0o600); err != nil {
		t.Fatal(err)
	}

	out := kilnCmd(t, dir, "cache", "ls")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	summary := regexp.MustCompile(`^1 layers, [0-9.]+ (KB|MB), in ` + regexp.QuoteMeta(dir) + `$`)
	if last := lines[len(lines)-1]; !summary.MatchString(last) {
		t.Errorf("kiln cache ls ends with %q, want it to match %s", last, summary)
	}
	for _, row := range []string{"layer a", "node-modules   1", "tmp            1"} {
		if !strings.Contains(out, row) {
			t.Errorf("kiln cache ls = %q, want a row with %q", out, row)
		}
	}

	var inv cache.Inventory
	if err := json.Unmarshal([]byte(kilnCmd(t, dir, "cache", "ls", "--json")), &inv); err != nil {
		t.Fatalf("kiln cache ls --json: %v", err)
	}
	du := duSB(t, dir)
	if diff := inv.Total.Bytes - du; diff < -du/100 || diff > du/100 {
		t.Errorf("kiln cache ls --json total = %d bytes, du -sb = %d", inv.Total.Bytes, du)
	}
	if len(inv.Layers) != 1 || len(inv.Kinds) != len(cache.Kinds()) {
		t.Errorf("kiln cache ls --json = %d layers, %d kinds, want 1 and %d", len(inv.Layers), len(inv.Kinds), len(cache.Kinds()))
	}

	if out := kilnCmd(t, dir, "cache", "prune"); !strings.HasPrefix(out, "removed 0 layers, 0 B\n") {
		t.Errorf("kiln cache prune of a fresh cache = %q, want it to remove no layer", out)
	}
	out = kilnCmd(t, dir, "cache", "prune", "--all")
	for _, line := range []string{`^removed 1 layers, [0-9.]+ (B|KB)$`, `^removed 1 node_modules installs, [0-9.]+ KB$`, `^removed 1 temporary files, [0-9.]+ KB$`, `^[0-9.]+ KB in all$`} {
		if !regexp.MustCompile(`(?m)` + line).MatchString(out) {
			t.Errorf("kiln cache prune --all = %q, want a line matching %s", out, line)
		}
	}
	if err := json.Unmarshal([]byte(kilnCmd(t, dir, "cache", "ls", "--json")), &inv); err != nil {
		t.Fatal(err)
	}
	if inv.Total.Entries != 0 || inv.Total.Bytes > 64<<10 {
		t.Errorf("after prune --all, kiln cache ls --json = %d entries, %d bytes, want none", inv.Total.Entries, inv.Total.Bytes)
	}
}

func duSB(t *testing.T, dir string) int64 {
	t.Helper()
	out, err := exec.Command("du", "-sb", dir).Output()
	if err != nil {
		t.Fatalf("du -sb %s: %v", dir, err)
	}
	n, err := strconv.ParseInt(strings.Fields(string(out))[0], 10, 64)
	if err != nil {
		t.Fatalf("du -sb %s printed %q", dir, out)
	}
	return n
}

// TestCacheVerify: a sound cache verifies; a flipped byte in a layer blob
// is printed and fails the command.
func TestCacheVerify(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := cache.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	l, err := s.Put(ctx, layers.NewKey("t").String("a").Sum(), "layer a", func(w io.Writer) error {
		return layers.WriteTar(w, []layers.File{layers.Bytes("f", 0o644, []byte("content"))})
	})
	if err != nil {
		t.Fatal(err)
	}
	kilnCmd(t, dir, "cache", "verify")
	d, _ := l.Digest()
	blob := filepath.Join(dir, "layers", "v1", "blobs", "sha256", d.Hex)
	b, err := os.ReadFile(blob)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 1
	if err := os.WriteFile(blob, b, 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	cmd := newRootCmd(&stdout, &stderr, func(k string) string { return map[string]string{"KILN_CACHE_DIR": dir}[k] })
	err = execute(ctx, cmd, []string{"cache", "verify"})
	if err == nil || !strings.Contains(err.Error(), "damaged cache entries") {
		t.Errorf("kiln cache verify = %v, want an error counting the damage", err)
	}
	if !strings.Contains(stdout.String(), d.Hex) {
		t.Errorf("kiln cache verify printed %q, want the damaged blob", stdout.String())
	}
}
