package run

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestLookupUser(t *testing.T) {
	rootfs := t.TempDir()
	// /etc is a symlink, as in some images: it must be read in the rootfs.
	if err := os.MkdirAll(filepath.Join(rootfs, "private/etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/private/etc", filepath.Join(rootfs, "etc")); err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{
		"passwd": "# comment\nroot:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\nnohome:x:1001:1001::::\n",
		"group":  "root:x:0:\napp:x:1000:\nstaff:x:2000:app,other\nwheel:x:10:root\ndocker:x:3000:other,app\n",
	} {
		if err := os.WriteFile(filepath.Join(rootfs, "private/etc", name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		user    string
		want    identity
		wantErr bool
	}{
		{user: "", want: identity{UID: 0, GID: 0, Groups: []uint32{10}, Home: "/root"}},
		{user: "app", want: identity{UID: 1000, GID: 1000, Groups: []uint32{2000, 3000}, Home: "/home/app"}},
		{user: "1000", want: identity{UID: 1000, GID: 1000, Groups: []uint32{2000, 3000}, Home: "/home/app"}},
		{user: "app:staff", want: identity{UID: 1000, GID: 2000, Groups: []uint32{3000}, Home: "/home/app"}},
		{user: "app:50", want: identity{UID: 1000, GID: 50, Groups: []uint32{2000, 3000}, Home: "/home/app"}},
		{user: "4242", want: identity{UID: 4242, GID: 0, Home: "/"}},
		{user: "4242:4242", want: identity{UID: 4242, GID: 4242, Home: "/"}},
		{user: "nohome", want: identity{UID: 1001, GID: 1001, Home: "/"}},
		{user: "nobody", wantErr: true},
		{user: "app:nogroup", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.user, func(t *testing.T) {
			got, err := lookupUser([]string{rootfs}, tc.user)
			if (err != nil) != tc.wantErr {
				t.Fatalf("lookupUser() = %v, want error %v", err, tc.wantErr)
			}
			if err == nil {
				if diff := cmp.Diff(tc.want, got); diff != "" {
					t.Errorf("lookupUser() mismatch (-want +got):\n%s", diff)
				}
			}
		})
	}
}

func TestLookupUserWithoutDatabases(t *testing.T) {
	tests := []struct {
		user    string
		want    identity
		wantErr bool
	}{
		{user: "", want: identity{Home: "/"}},
		{user: "65532:65532", want: identity{UID: 65532, GID: 65532, Home: "/"}},
		{user: "app", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.user, func(t *testing.T) {
			got, err := lookupUser([]string{t.TempDir()}, tc.user)
			if (err != nil) != tc.wantErr {
				t.Fatalf("lookupUser() = %v, want error %v", err, tc.wantErr)
			}
			if err == nil {
				if diff := cmp.Diff(tc.want, got); diff != "" {
					t.Errorf("lookupUser() mismatch (-want +got):\n%s", diff)
				}
			}
		})
	}
}
