//go:build e2e

package e2e

import (
	"debug/elf"
	"os"
	"path/filepath"
	"testing"
)

// maxWatchdogBytes is the bound on the watchdog: at most 6 MB.
const maxWatchdogBytes = 6_000_000

// TestWatchdogBinaries checks the watchdogs kiln puts in images, the ones
// beside the kiln under test: at most 6 MB each and static, so that they
// run on every base.
func TestWatchdogBinaries(t *testing.T) {
	paths, err := filepath.Glob(filepath.Join(filepath.Dir(kilnBin), "kiln-watchdog-linux-*"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no kiln-watchdog-linux-* beside %s: %v", kilnBin, err)
	}
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %d bytes", filepath.Base(p), st.Size())
		if st.Size() > maxWatchdogBytes {
			t.Errorf("%s is %d bytes, want at most %d", filepath.Base(p), st.Size(), maxWatchdogBytes)
		}
		f, err := elf.Open(p)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		for _, prog := range f.Progs {
			if prog.Type == elf.PT_INTERP {
				t.Errorf("%s has an ELF interpreter: it is not static", filepath.Base(p))
			}
		}
		f.Close()
	}
}
