package run

import (
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestLookupSubIDs(t *testing.T) {
	name := strconv.Itoa(os.Getuid())
	if u, err := user.LookupId(name); err == nil {
		name = u.Username
	}
	tests := []struct {
		name    string
		subuid  string
		subgid  string
		wantErr string // empty: found
		want    [4]int // uid start, count, gid start, count
	}{
		{"by name", "other:100000:65536\n" + name + ":200000:65536\n", name + ":300000:1000\n", "", [4]int{200000, 65535, 300000, 1000}},
		{"by uid", strconv.Itoa(os.Getuid()) + ":200000:10\n", strconv.Itoa(os.Getuid()) + ":300000:10\n", "", [4]int{200000, 10, 300000, 10}},
		{"none", "other:100000:65536\n", "", "usermod --add-subuids 100000-165535 --add-subgids 100000-165535 " + name, [4]int{}},
		{"no gids", name + ":200000:65536\n", "", "needs subordinate ids for user " + name, [4]int{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			subuid, subgid := filepath.Join(dir, "subuid"), filepath.Join(dir, "subgid")
			for f, body := range map[string]string{subuid: tc.subuid, subgid: tc.subgid} {
				if err := os.WriteFile(f, []byte(body), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			ids, err := lookupSubIDs(subuid, subgid)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || strings.Contains(err.Error(), "\n") {
					t.Errorf("lookupSubIDs() = %v, want one line with %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Skipf("lookupSubIDs() = %v (no newuidmap here?)", err)
			}
			if got := [4]int{ids.uidStart, ids.uidCount, ids.gidStart, ids.gidCount}; got != tc.want {
				t.Errorf("lookupSubIDs() ranges = %v, want %v", got, tc.want)
			}
		})
	}
}
