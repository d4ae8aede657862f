package bases

import (
	"context"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kiln-build/kiln/internal/contract"
	"github.com/kiln-build/kiln/languages"
	"github.com/kiln-build/kiln/runtime-images/debian"
	"github.com/kiln-build/kiln/runtime-images/debian/debiantest"
)

// offlineSource is a Source whose fetcher has no mirror to reach.
func offlineSource(t *testing.T) *Source {
	f, err := debian.NewFetcher(t.TempDir(), debian.WithMirror("http://127.0.0.1:1/debian"), debian.WithSecurityMirror("http://127.0.0.1:1/debian-security"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewSource(f)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestNewSource(t *testing.T) {
	if _, err := NewSource(nil); err == nil {
		t.Errorf("NewSource(nil) = nil error, want one")
	}
}

// jdkDeb is a Debian JDK package for arm64 holding the given jmods.
func jdkDeb(version string, jmods ...string) debiantest.Deb {
	d := debiantest.Deb{Name: "openjdk-17-jdk-headless", Version: version, Arch: "arm64",
		Files: []debiantest.File{{Path: "./usr/lib/jvm/java-17-openjdk-arm64/bin/jlink", Mode: 0o755, Data: "elf"}}}
	for _, m := range jmods {
		d.Files = append(d.Files, debiantest.File{Path: "./usr/lib/jvm/java-17-openjdk-arm64/jmods/" + m, Mode: 0o644, Data: m + " of " + version})
	}
	return d
}

// javaMirror serves the java recipe's suites, with a JDK in bookworm and
// another in bookworm-security.
func javaMirror(t *testing.T) (*debiantest.Mirror, *Source) {
	arm64 := func(debs ...debiantest.Deb) map[string][]debiantest.Deb {
		return map[string][]debiantest.Deb{"arm64": debs}
	}
	m := debiantest.NewMirror(t,
		debiantest.Suite{Name: "bookworm", Packages: arm64(jdkDeb("17.0.19+10-1~deb12u2", "java.base.jmod"))},
		debiantest.Suite{Name: "bookworm-updates", Packages: arm64()},
		debiantest.Suite{Name: "bookworm-security", Packages: arm64(jdkDeb("17.0.21.1+2-1~deb12u1", "java.base.jmod", "java.sql.jmod"))},
	)
	f, err := debian.NewFetcher(t.TempDir(), m.Options()...)
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewSource(f)
	if err != nil {
		t.Fatal(err)
	}
	return m, s
}

func TestSourceVersions(t *testing.T) {
	_, s := javaMirror(t)
	ctx := context.Background()
	tests := []struct {
		name, base, arch, pkg string
		want                  []string // version (suite)
		wantErr               bool
	}{
		{name: "one per suite that has it, in suite order", base: "java", arch: "arm64", pkg: "openjdk-17-jdk-headless",
			want: []string{"17.0.19+10-1~deb12u2 (bookworm)", "17.0.21.1+2-1~deb12u1 (bookworm-security)"}},
		{name: "no suite has it", base: "java", arch: "arm64", pkg: "openjdk-21-jdk-headless"},
		{name: "an index the mirror lacks", base: "java", arch: "riscv64", pkg: "openjdk-17-jdk-headless", wantErr: true},
		{name: "no such base", base: "cobol", arch: "arm64", pkg: "openjdk-17-jdk-headless", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.Versions(ctx, tc.base, tc.arch, tc.pkg)
			if (err != nil) != tc.wantErr {
				t.Fatalf("Versions() = %v, %v; want an error: %v", got, err, tc.wantErr)
			}
			var versions []string
			for _, p := range got {
				versions = append(versions, p.Version+" ("+p.Suite+")")
				if p.Name != tc.pkg || p.Architecture != "arm64" || p.SHA256 == "" || p.Unpacker != debian.ExtractVersion {
					t.Errorf("Versions() lists %+v", p)
				}
			}
			if !slices.Equal(versions, tc.want) {
				t.Errorf("Versions() = %q, want %q", versions, tc.want)
			}
		})
	}
	if _, err := s.Versions(ctx, "java", "riscv64", "x"); err == nil || !strings.Contains(err.Error(), "reading Debian's bookworm index for riscv64") {
		t.Errorf("Versions() without an index = %v, want it to name the suite and architecture", err)
	}
}

func TestSourceUnpack(t *testing.T) {
	m, s := javaMirror(t)
	ctx := context.Background()
	pkgs, err := s.Versions(ctx, "java", "arm64", "openjdk-17-jdk-headless")
	if err != nil || len(pkgs) != 2 {
		t.Fatalf("Versions() = %v, %v", pkgs, err)
	}
	p := pkgs[1]
	for range 2 {
		files, err := s.Unpack(ctx, p, t.TempDir())
		if err != nil {
			t.Fatalf("Unpack() = %v", err)
		}
		got := map[string]string{}
		for _, f := range files {
			if f.Mode.IsRegular() && f.Source != "" {
				b, err := os.ReadFile(f.Source)
				if err != nil {
					t.Fatal(err)
				}
				got[f.Path] = string(b)
			}
		}
		if want := "java.sql.jmod of 17.0.21.1+2-1~deb12u1"; got["usr/lib/jvm/java-17-openjdk-arm64/jmods/java.sql.jmod"] != want {
			t.Errorf("Unpack() files = %v, want java.sql.jmod holding %q", got, want)
		}
	}
	if n := m.Requests(m.PackagePath(m.Package(t, "bookworm-security", "arm64", "openjdk-17-jdk-headless"))); n != 1 {
		t.Errorf("the package was fetched %d times for two unpacks, want once", n)
	}
	bad := p
	bad.SHA256 = strings.Repeat("0", 64)
	var ce *debian.ChecksumError
	if _, err := s.Unpack(ctx, bad, t.TempDir()); !errors.As(err, &ce) {
		t.Errorf("Unpack() of a package with another checksum = %v, want a *debian.ChecksumError", err)
	}
}

// The Python pack compiles the standard library of the python base's
// lock.
func TestSourceLocked(t *testing.T) {
	s := offlineSource(t)
	r, err := Lookup("python")
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Locked("python", "arm64")
	if err != nil {
		t.Fatalf("Locked() = %v", err)
	}
	want := locked(t, r, "arm64")
	if len(got) != len(want) {
		t.Fatalf("Locked() lists %d packages, want the lock's %d", len(got), len(want))
	}
	for i, p := range got {
		w := want[i].Package()
		if p.Name != w.Name || p.Version != w.Version || p.SHA256 != w.SHA256 || p.Filename != w.Filename || p.Size != w.Size || p.Suite != w.Suite || p.Unpacker != debian.ExtractVersion {
			t.Errorf("Locked()[%d] = %+v, want the lock's %+v", i, p, w)
		}
	}
	for _, name := range []string{"libpython3.11-minimal", "libpython3.11-stdlib"} {
		if !slices.ContainsFunc(got, func(p languages.Deb) bool { return p.Name == name }) {
			t.Errorf("Locked(python, arm64) has no %s", name)
		}
	}
	var ue *UnknownRecipeError
	if _, err := s.Locked("cobol", "arm64"); !errors.As(err, &ue) {
		t.Errorf("Locked(cobol) = %v, want an *UnknownRecipeError", err)
	}
	var se *StaleLockError
	if _, err := s.Locked("python", "riscv64"); !errors.As(err, &se) {
		t.Errorf("Locked(python, riscv64) = %v, want a *StaleLockError", err)
	}
}

// Base assembles the recipes compiled in: nothing is fetched until a step
// is built.
func TestSourceBase(t *testing.T) {
	s := offlineSource(t)
	r, err := Lookup("static")
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.Base(context.Background(), "static", v1.Platform{OS: "linux", Architecture: "arm64"}, nil)
	if err != nil {
		t.Fatalf("Base() = %v", err)
	}
	if n := len(locked(t, r, "arm64")) + 1; b.Name != "static" || len(b.Steps) != n {
		t.Errorf("Base() = %s with %d steps, want static with %d", b.Name, len(b.Steps), n)
	}
	if b.Config.User != contract.User || b.Config.WorkingDir != "/"+contract.AppDir {
		t.Errorf("Base() config user, workdir = %q, %q; want the contract's", b.Config.User, b.Config.WorkingDir)
	}
	var ue *UnknownRecipeError
	if _, err := s.Base(context.Background(), "cobol", v1.Platform{OS: "linux", Architecture: "arm64"}, nil); !errors.As(err, &ue) {
		t.Errorf("Base(cobol) = %v, want an *UnknownRecipeError", err)
	}
}
