//go:build cluster

package kube

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestUnescapeMount(t *testing.T) {
	tests := []struct{ in, want string }{
		{"/tmp/kiln-kube-1/kubelet/root", "/tmp/kiln-kube-1/kubelet/root"},
		{`/tmp/a\040b`, "/tmp/a b"},
		{`/tmp/tab\011end`, "/tmp/tab\tend"},
		{`/tmp/back\134slash`, `/tmp/back\slash`},
		{`/tmp/short\04`, `/tmp/short\04`},
	}
	for _, tc := range tests {
		if got := unescapeMount(tc.in); got != tc.want {
			t.Errorf("unescapeMount(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestRemoveLinksInto: only the links that point into the cluster's
// directory go; other links and files stay.
func TestRemoveLinksInto(t *testing.T) {
	links, dir, other := t.TempDir(), t.TempDir(), t.TempDir()
	for name, target := range map[string]string{
		"ours.log":   filepath.Join(dir, "pod-logs", "a", "0.log"),
		"theirs.log": filepath.Join(other, "0.log"),
		"prefix.log": dir + "-not-ours/0.log",
	} {
		if err := os.Symlink(target, filepath.Join(links, name)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(links, "file.log"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := removeLinksInto(links, dir); err != nil {
		t.Fatalf("removeLinksInto() = %v", err)
	}
	entries, err := os.ReadDir(links)
	if err != nil {
		t.Fatal(err)
	}
	var left []string
	for _, e := range entries {
		left = append(left, e.Name())
	}
	if diff := cmp.Diff([]string{"file.log", "prefix.log", "theirs.log"}, left); diff != "" {
		t.Errorf("links left (-want +got):\n%s", diff)
	}
}
