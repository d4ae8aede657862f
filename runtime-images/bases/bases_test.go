package bases

import (
	"archive/tar"
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kiln-build/kiln/internal/contract"
	"github.com/kiln-build/kiln/runtime-images/debian"
)

func newFetcher(t *testing.T, m *staticMirror) *debian.Fetcher {
	t.Helper()
	f, err := debian.NewFetcher(t.TempDir(), m.Options()...)
	if err != nil {
		t.Fatalf("NewFetcher() = %v", err)
	}
	return f
}

// lockedStatic returns the built-in static recipe locked against the test
// mirror.
func lockedStatic(t *testing.T, m *staticMirror) *Recipe {
	t.Helper()
	r, err := Lookup("static")
	if err != nil {
		t.Fatalf("Lookup(static) = %v", err)
	}
	lock, err := Lock(context.Background(), r, newFetcher(t, m))
	if err != nil {
		t.Fatalf("Lock() = %v", err)
	}
	r.Lock = lock
	return r
}

func TestLock(t *testing.T) {
	m := newStaticMirror(t)
	r := lockedStatic(t, m)
	for _, arch := range []string{"amd64", "arm64"} {
		t.Run(arch, func(t *testing.T) {
			var got []string
			for _, p := range r.Lock.Architectures[arch] {
				got = append(got, p.Name+" "+p.Version+" "+p.Suite)
				if want := m.Package(t, p.Suite, arch, p.Name); p.Package() != (debian.Package{
					Name: want.Name, Version: want.Version, Architecture: want.Architecture, Suite: want.Suite,
					Filename: want.Filename, Size: want.Size, SHA256: want.SHA256,
				}) {
					t.Errorf("Lock() pins %+v, want %+v", p, want)
				}
			}
			want := []string{
				"base-files 12.4+deb12u5 bookworm",
				"ca-certificates 20230311 bookworm",
				"media-types 10.0.0 bookworm",
				"netbase 6.4 bookworm",
				"tzdata 2024b-0+deb12u1 bookworm-security",
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("Lock() packages (-want +got):\n%s", diff)
			}
		})
	}
	t.Run("file form is stable and round-trips", func(t *testing.T) {
		first, err := r.Lock.Marshal()
		if err != nil {
			t.Fatalf("Marshal() = %v", err)
		}
		back, err := ParseLock("static", first)
		if err != nil {
			t.Fatalf("ParseLock() = %v", err)
		}
		if diff := cmp.Diff(r.Lock, back); diff != "" {
			t.Errorf("ParseLock(Marshal()) (-want +got):\n%s", diff)
		}
		again, err := lockedStatic(t, m).Lock.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if string(again) != string(first) {
			t.Errorf("second Lock().Marshal() =\n%s\nwant\n%s", again, first)
		}
		if !strings.HasPrefix(string(first), "{\n  \"recipe\": \"static\",\n") || !strings.HasSuffix(string(first), "}\n") {
			t.Errorf("Marshal() =\n%s\nwant 2-space indented JSON ending in a newline", first)
		}
	})
}

func TestAssembleStatic(t *testing.T) {
	m := newStaticMirror(t)
	r := lockedStatic(t, m)
	b, err := Assemble(context.Background(), r, "amd64", newFetcher(t, m))
	if err != nil {
		t.Fatalf("Assemble() = %v", err)
	}
	img, _ := image(t, b)
	files := flatten(t, img)

	t.Run("config", func(t *testing.T) {
		digest, err := r.Lock.Digest()
		if err != nil {
			t.Fatal(err)
		}
		want := v1.Config{
			User:       "65532:65532",
			WorkingDir: "/home/app",
			Env: []string{
				"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
				"SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt",
			},
			Labels: map[string]string{LabelRecipe: "static", LabelLock: digest},
		}
		if diff := cmp.Diff(want, b.Config); diff != "" {
			t.Errorf("Assemble() config (-want +got):\n%s", diff)
		}
	})

	t.Run("CA bundle", func(t *testing.T) {
		bundle := files["etc/ssl/certs/ca-certificates.crt"]
		want := string(m.certs["mozilla/ACCV_Root.crt"]) + string(m.certs["mozilla/Alpha_Root.crt"]) + "\n" + string(m.certs["mozilla/Zeta_Root.crt"])
		if bundle.Content != want {
			t.Errorf("ca-certificates.crt =\n%s\nwant\n%s", bundle.Content, want)
		}
		if bundle.Mode != 0o644 {
			t.Errorf("ca-certificates.crt mode = %o, want 644", bundle.Mode)
		}
		var names []string
		for block, rest := pem.Decode([]byte(bundle.Content)); block != nil; block, rest = pem.Decode(rest) {
			cert, err := x509.ParseCertificate(block.Bytes)
			if err != nil {
				t.Fatalf("parsing ca-certificates.crt: %v", err)
			}
			names = append(names, cert.Subject.CommonName)
		}
		if want := []string{"ACCV", "Alpha", "Zeta"}; !cmp.Equal(names, want) {
			t.Errorf("ca-certificates.crt holds %v, want %v", names, want)
		}
	})

	t.Run("users", func(t *testing.T) {
		wantPasswd := "root:x:0:0:root:/root:/sbin/nologin\n" +
			"nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n" +
			"nonroot:x:65532:65532:nonroot:/home/app:/sbin/nologin\n" +
			"app:x:65532:65532:app:/home/app:/sbin/nologin\n"
		if got := files["etc/passwd"].Content; got != wantPasswd {
			t.Errorf("/etc/passwd =\n%s\nwant\n%s", got, wantPasswd)
		}
		wantGroup := "root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\napp:x:65532:\n"
		if got := files["etc/group"].Content; got != wantGroup {
			t.Errorf("/etc/group =\n%s\nwant\n%s", got, wantGroup)
		}
		if got := files["etc/nsswitch.conf"].Content; !strings.Contains(got, "hosts:     files dns\n") {
			t.Errorf("/etc/nsswitch.conf =\n%s\nwant a hosts: files dns line", got)
		}
	})

	tests := []struct {
		path string
		want *fsEntry // nil: absent
	}{
		{"tmp", &fsEntry{Type: tar.TypeDir, Mode: 0o1777}},
		{"home/app", &fsEntry{Type: tar.TypeDir, Mode: 0o755, UID: 65532, GID: 65532}},
		{"root", &fsEntry{Type: tar.TypeDir, Mode: 0o700}},
		{"var/local", &fsEntry{Type: tar.TypeDir, Mode: 0o2775, GID: 50}},
		{"etc/os-release", &fsEntry{Type: tar.TypeSymlink, Mode: 0o777, Linkname: "../usr/lib/os-release"}},
		{"usr/share/zoneinfo/Europe/Berlin", &fsEntry{Type: tar.TypeReg, Mode: 0o644, Content: "TZif2 Berlin, newer"}},
		{"etc/services", &fsEntry{Type: tar.TypeReg, Mode: 0o644, Content: "http 80/tcp\n"}},
		{"etc/mime.types", &fsEntry{Type: tar.TypeReg, Mode: 0o644, Content: "text/plain txt\n"}},
		{"usr/share/doc/netbase/copyright", &fsEntry{Type: tar.TypeReg, Mode: 0o644, Content: "netbase licence\n"}},
		{"usr/share/doc/netbase/changelog.gz", nil},
		{"usr/share/man", nil},
		{"usr/share/lintian", nil},
		{"usr/sbin/update-ca-certificates", nil},
		{"usr/share/ca-certificates", nil},
		{"etc/ca-certificates", nil},
	}
	for _, tc := range tests {
		t.Run("/"+tc.path, func(t *testing.T) {
			got, ok := files[tc.path]
			switch {
			case tc.want == nil && ok:
				t.Errorf("/%s is in the image, want it left out", tc.path)
			case tc.want != nil && !ok:
				t.Errorf("/%s is not in the image", tc.path)
			case tc.want != nil:
				if diff := cmp.Diff(*tc.want, got); diff != "" {
					t.Errorf("/%s (-want +got):\n%s", tc.path, diff)
				}
			}
		})
	}

	t.Run("status.d", func(t *testing.T) {
		for _, p := range locked(t, r, "amd64") {
			got := files["var/lib/dpkg/status.d/"+p.Name].Content
			if !strings.HasPrefix(got, "Package: "+p.Name+"\nVersion: "+p.Version+"\n") {
				t.Errorf("status.d/%s =\n%s\nwant the control stanza of %s %s", p.Name, got, p.Name, p.Version)
			}
		}
	})
}

func TestAssembleDeterministic(t *testing.T) {
	m := newStaticMirror(t)
	r := lockedStatic(t, m)
	build := func() ([]v1.Hash, []v1.Hash) {
		// A fresh cache each time: the layers must not depend on it.
		b, err := Assemble(context.Background(), r, "arm64", newFetcher(t, m))
		if err != nil {
			t.Fatalf("Assemble() = %v", err)
		}
		var keys []v1.Hash
		for _, s := range b.Steps {
			k, err := s.Key(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			keys = append(keys, k)
		}
		_, digests := image(t, b)
		return keys, digests
	}
	keys1, digests1 := build()
	keys2, digests2 := build()
	if diff := cmp.Diff(digests1, digests2); diff != "" {
		t.Errorf("layer digests of a second Assemble() (-first +second):\n%s", diff)
	}
	if diff := cmp.Diff(keys1, keys2); diff != "" {
		t.Errorf("step keys of a second Assemble() (-first +second):\n%s", diff)
	}
}

func TestStepKeys(t *testing.T) {
	m := newStaticMirror(t)
	r := lockedStatic(t, m)
	f := newFetcher(t, m)
	keys := func(r *Recipe, opts ...Option) map[string]v1.Hash {
		t.Helper()
		b, err := Assemble(context.Background(), r, "amd64", f, opts...)
		if err != nil {
			t.Fatalf("Assemble() = %v", err)
		}
		pkgs := locked(t, r, "amd64")
		out := make(map[string]v1.Hash)
		for i, s := range b.Steps {
			k, err := s.Key(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			name := "system"
			if i < len(pkgs) {
				name = pkgs[i].Name
			}
			out[name] = k
		}
		return out
	}
	base := keys(r)

	t.Run("a new sha256 changes that package's key only", func(t *testing.T) {
		changed := *r
		changed.Lock = relock(r.Lock, "amd64", "tzdata", func(p *LockedPackage) { p.SHA256 = strings.Repeat("f", 64) })
		got := keys(&changed)
		for name, k := range base {
			if same := got[name] == k; same != (name != "tzdata") {
				t.Errorf("key of %s after tzdata's sha256 changed: same = %v, want %v", name, same, name != "tzdata")
			}
		}
		b, err := Assemble(context.Background(), &changed, "amd64", f)
		if err != nil {
			t.Fatal(err)
		}
		i := slices.IndexFunc(locked(t, &changed, "amd64"), func(p LockedPackage) bool { return p.Name == "tzdata" })
		err = b.Steps[i].Build(context.Background(), io.Discard)
		var ce *debian.ChecksumError
		if !errors.As(err, &ce) || !strings.Contains(err.Error(), "tzdata") {
			t.Errorf("Build() with a wrong sha256 = %v, want a *debian.ChecksumError naming tzdata", err)
		}
	})
	t.Run("the epoch changes every key", func(t *testing.T) {
		got := keys(r, WithEpoch(time.Unix(1700000000, 0)))
		for name, k := range base {
			if got[name] == k {
				t.Errorf("key of %s with another epoch = %s, want a new key", name, k)
			}
		}
	})
	t.Run("an arch-independent package has one key for every arch", func(t *testing.T) {
		b, err := Assemble(context.Background(), r, "arm64", f)
		if err != nil {
			t.Fatal(err)
		}
		for i, p := range locked(t, r, "arm64") {
			k, _ := b.Steps[i].Key(context.Background())
			if same := k == base[p.Name]; same != (p.Architecture == "all") {
				t.Errorf("arm64 key of %s (%s) same as amd64 = %v, want %v", p.Name, p.Architecture, same, p.Architecture == "all")
			}
		}
	})
}

func relock(l *LockFile, arch, name string, change func(*LockedPackage)) *LockFile {
	out := &LockFile{Recipe: l.Recipe, Inputs: l.Inputs, Architectures: make(map[string][]LockedPackage)}
	for a, pkgs := range l.Architectures {
		pkgs = slices.Clone(pkgs)
		for i := range pkgs {
			if a == arch && pkgs[i].Name == name {
				change(&pkgs[i])
			}
		}
		out.Architectures[a] = pkgs
	}
	return out
}

func TestAssembleErrors(t *testing.T) {
	m := newStaticMirror(t)
	locked := lockedStatic(t, m)
	tests := []struct {
		name   string
		change func(r *Recipe)
		arch   string
		check  func(error) bool
	}{
		{"no lock", func(r *Recipe) { r.Lock = nil }, "amd64", isError[*StaleLockError]},
		{"recipe changed since locking", func(r *Recipe) {
			r.Packages = append(slices.Clone(r.Packages), PackageSpec{Name: "libc6"})
		}, "amd64", isError[*StaleLockError]},
		{"lock lacks a package", func(r *Recipe) {
			r.Lock = relock(r.Lock, "amd64", "tzdata", func(p *LockedPackage) { p.Name = "tzdata-legacy" })
		}, "amd64", isError[*StaleLockError]},
		{"architecture not in the recipe", func(r *Recipe) {}, "s390x", isError[*UnsupportedArchError]},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := *locked
			tc.change(&r)
			_, err := Assemble(context.Background(), &r, tc.arch, newFetcher(t, m))
			if !tc.check(err) {
				t.Errorf("Assemble() = %v, want another error type", err)
			}
		})
	}
}

func isError[T error](err error) bool {
	var target T
	return errors.As(err, &target)
}

// The Java pack links the runtime's cacerts to where the java base keeps
// its trust store.
func TestJavaTrustStorePath(t *testing.T) {
	r, err := Lookup("java")
	if err != nil {
		t.Fatal(err)
	}
	if r.JavaTrustStore != contract.JavaTrustStore {
		t.Errorf("java recipe's java_truststore = %q, want contract.JavaTrustStore %q", r.JavaTrustStore, contract.JavaTrustStore)
	}
}
