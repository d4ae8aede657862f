package cache

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/kiln-build/kiln/internal/xattr"
)

// clock is a settable clock for WithClock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func openStore(t *testing.T, dir string, opts ...Option) *Store {
	t.Helper()
	s, err := Open(dir, append([]Option{WithBootID("boot-a")}, opts...)...)
	if err != nil {
		t.Fatalf("Open() = %v", err)
	}
	return s
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// files returns a fill that writes a tree: names ending in / are
// directories.
func files(tree map[string][]byte) func(string) error {
	return func(dir string) error {
		for name, data := range tree {
			p := filepath.Join(dir, filepath.FromSlash(name))
			if strings.HasSuffix(name, "/") {
				if err := os.MkdirAll(p, 0o755); err != nil {
					return err
				}
				continue
			}
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return err
			}
			if err := os.WriteFile(p, data, 0o644); err != nil {
				return err
			}
		}
		return nil
	}
}

func writeContent(data []byte) func(string) error {
	return func(path string) error { return os.WriteFile(path, data, 0o644) }
}

func sha256Of(b []byte) Digest {
	sum := sha256.Sum256(b)
	return SHA256(hex.EncodeToString(sum[:]), int64(len(b)))
}

func sha512Of(b []byte) Digest {
	sum := sha512.Sum512(b)
	return SHA512(hex.EncodeToString(sum[:]))
}

func mustTree(t *testing.T, s *Store, k Kind, key string, fill func(string) error) string {
	t.Helper()
	l, err := s.Tree(context.Background(), k, key, fill)
	if err != nil {
		t.Fatalf("Tree(%s, %s) = %v", k, key, err)
	}
	l.Close()
	return l.Path
}

func mustFile(t *testing.T, s *Store, k Kind, data []byte, d Digest) string {
	t.Helper()
	l, err := s.File(context.Background(), k, d.Hex+".bin", d, writeContent(data))
	if err != nil {
		t.Fatalf("File(%s) = %v", k, err)
	}
	l.Close()
	return l.Path
}

// writeImages writes an OCI layout at dir naming one random image, and
// returns the layout and the image.
func writeImages(t *testing.T, dir, name string) (layout.Path, v1.Image) {
	t.Helper()
	p, err := layout.FromPath(dir)
	if err != nil {
		if p, err = layout.Write(dir, empty.Index); err != nil {
			t.Fatal(err)
		}
	}
	img, err := random.Image(4096, 2)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.ReplaceImage(img, matchName(name), layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": name})); err != nil {
		t.Fatal(err)
	}
	return p, img
}

func matchName(name string) func(v1.Descriptor) bool {
	return func(d v1.Descriptor) bool { return d.Annotations["org.opencontainers.image.ref.name"] == name }
}

// fillEveryKind puts at least one entry of every kind in s, and returns
// what it put per kind.
func fillEveryKind(t *testing.T, s *Store) map[Kind]int {
	t.Helper()
	ctx := context.Background()
	dir := s.Dir()
	if _, err := s.Put(ctx, key("layer"), "layer", tarOf(string(randomBytes(t, 30000)))); err != nil {
		t.Fatal(err)
	}
	mustTree(t, s, JavaOutputs, "deps/"+key("java").Hex, files(map[string][]byte{
		"repository/a.jar": randomBytes(t, 20000),
		"repository/b/":    nil,
	}))
	mustTree(t, s, NodeModules, key("node").Hex, files(map[string][]byte{
		"node_modules/left-pad/index.js":     randomBytes(t, 5000),
		"node_modules/left-pad/package.json": []byte(`{}`),
	}))
	mustTree(t, s, GoModules, key("go").Hex, files(map[string][]byte{
		"github.com/google/uuid@v1.6.0/uuid.go": randomBytes(t, 6000),
	}))
	mustTree(t, s, GoBuildCaches, key("gocache").Hex, files(map[string][]byte{"ab/cd-a": randomBytes(t, 6000)}))
	rt := randomBytes(t, 40000)
	mustFile(t, s, NodeRuntimes, rt, sha512Of(rt))
	deb := randomBytes(t, 30000)
	mustFile(t, s, DebianFiles, deb, sha256Of(deb))
	zip := randomBytes(t, 35000)
	mustFile(t, s, Toolchains, zip, sha256Of(zip))
	mustTree(t, s, RootfsLayers, key("layer").Hex, func(d string) error {
		if err := files(map[string][]byte{"usr/bin/tool": randomBytes(t, 25000)})(d); err != nil {
			return err
		}
		// A hard link, which du counts once, and a symlink.
		if err := os.Link(filepath.Join(d, "usr/bin/tool"), filepath.Join(d, "usr/bin/tool2")); err != nil {
			return err
		}
		return os.Symlink("tool", filepath.Join(d, "usr/bin/link"))
	})
	mustTree(t, s, Rootfs, key("image").Hex, files(map[string][]byte{"etc/passwd": randomBytes(t, 12000)}))
	mustTree(t, s, MountCaches, key("go-build").Hex, files(map[string][]byte{"ab/cd-a": randomBytes(t, 8000)}))
	writeImages(t, filepath.Join(dir, "images"), "hello:dev")
	if err := os.MkdirAll(filepath.Join(dir, "secrets"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "secrets", "api-key"), []byte("s3cr3t"), 0o600); err != nil {
		t.Fatal(err)
	}
	// Temporary: a held folder, a file a dead process left, and the run
	// folder of an earlier version.
	tmp, remove, err := s.TempDir("run-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { remove() })
	if err := files(map[string][]byte{"rw/upper/file": randomBytes(t, 9000)})(tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tmp", "debian-123"), randomBytes(t, 7000), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := files(map[string][]byte{"run/4711/rw/upper/f": randomBytes(t, 3000)})(dir); err != nil {
		t.Fatal(err)
	}
	// Unknown to this version.
	if err := files(map[string][]byte{"notes.txt": randomBytes(t, 11000)})(dir); err != nil {
		t.Fatal(err)
	}
	return map[Kind]int{
		Layers: 1, JavaOutputs: 1, NodeModules: 1, NodeRuntimes: 1, GoModules: 1, GoBuildCaches: 1, DebianFiles: 1, Toolchains: 1,
		RootfsLayers: 1, Rootfs: 1, MountCaches: 1, Images: 1, Secrets: 1, Temp: 3, Other: 1,
	}
}

// duSB returns what `du -sb` says of dir.
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

func TestUsageCountsEveryKind(t *testing.T) {
	if _, err := exec.LookPath("du"); err != nil {
		t.Skip("no du here to compare with")
	}
	ctx := context.Background()
	s := openStore(t, t.TempDir())
	want := fillEveryKind(t, s)
	u, err := s.Usage(ctx)
	if err != nil {
		t.Fatalf("Usage() = %v", err)
	}
	if len(u) != len(Kinds()) {
		t.Fatalf("Usage() has %d kinds, want %d", len(u), len(Kinds()))
	}
	for _, k := range Kinds() {
		got := u.Of(k)
		if got.Entries != want[k] {
			t.Errorf("Usage() of %s: %d entries, want %d", k, got.Entries, want[k])
		}
		if got.Bytes <= 0 {
			t.Errorf("Usage() of %s: %d bytes, want some", k, got.Bytes)
		}
	}
	// The kinds that are one directory each measure as du measures it.
	for _, k := range []Kind{JavaOutputs, NodeModules, NodeRuntimes, DebianFiles, Toolchains, RootfsLayers, Images, Secrets} {
		if got, want := u.Of(k).Bytes, duSB(t, s.kindDir(k)); got != want {
			t.Errorf("Usage() of %s = %d bytes, du -sb %s = %d", k, got, k.spec().dir, want)
		}
	}
	total, du := u.Total().Bytes, duSB(t, s.Dir())
	if diff := total - du; diff < -du/100 || diff > du/100 {
		t.Errorf("Usage().Total() = %d bytes, du -sb = %d: off by more than 1%%", total, du)
	} else if diff != 0 {
		t.Logf("Usage().Total() = %d bytes, du -sb = %d", total, du)
	}
}

func TestPruneByAge(t *testing.T) {
	old, recent := t0, t0.Add(10*24*time.Hour)
	cutoff := t0.Add(5 * 24 * time.Hour)
	tests := []struct {
		kind Kind
		// make adds entries with the clock at old and at recent, and
		// returns the paths Prune must remove and those it must keep.
		make        func(t *testing.T, s *Store, c *clock) paths
		wantEntries int
	}{
		{Layers, func(t *testing.T, s *Store, c *clock) paths {
			ctx := context.Background()
			var p paths
			for _, at := range []time.Time{old, recent} {
				c.set(at)
				l, err := s.Put(ctx, key(at.String()), "l", tarOf(at.String()))
				if err != nil {
					t.Fatal(err)
				}
				d, _ := l.Digest()
				if at.Equal(old) {
					p.gone = append(p.gone, s.keyPath(key(at.String())), s.blobPath(d))
				} else {
					p.kept = append(p.kept, s.keyPath(key(at.String())), s.blobPath(d))
				}
			}
			return p
		}, 1},
		{JavaOutputs, treeCase(JavaOutputs, "classes/"), 1},
		{NodeModules, treeCase(NodeModules, ""), 1},
		{NodeRuntimes, fileCase(NodeRuntimes), 1},
		{DebianFiles, fileCase(DebianFiles), 1},
		{Rootfs, treeCase(Rootfs, ""), 1},
		{MountCaches, treeCase(MountCaches, ""), 1},
		{RootfsLayers, func(t *testing.T, s *Store, c *clock) paths {
			p := treeCase(RootfsLayers, "")(t, s, c)
			// An earlier boot's entry goes whatever its age.
			earlier := filepath.Join(s.Dir(), "rootfs", "layers", "boot-0", key("earlier").Hex)
			if err := files(map[string][]byte{"f": []byte("x")})(earlier); err != nil {
				t.Fatal(err)
			}
			return paths{gone: append(p.gone, earlier), kept: p.kept}
		}, 2},
		{Images, func(t *testing.T, s *Store, c *clock) paths {
			dir := filepath.Join(s.Dir(), "images")
			// Each build of a tag leaves the image it replaces reachable
			// from nothing: first, written long ago, goes; replaced,
			// written recently, stays; current, named, stays however old.
			_, first := writeImages(t, dir, "hello:dev")
			_, replaced := writeImages(t, dir, "hello:dev")
			_, current := writeImages(t, dir, "hello:dev")
			var p paths
			for _, x := range []struct {
				img  v1.Image
				at   time.Time
				gone bool
			}{{first, old, true}, {replaced, recent, false}, {current, old, false}} {
				for _, b := range blobsOf(t, x.img) {
					path := filepath.Join(dir, "blobs", b.Algorithm, b.Hex)
					if err := os.Chtimes(path, x.at, x.at); err != nil {
						t.Fatal(err)
					}
					if x.gone {
						p.gone = append(p.gone, path)
					} else {
						p.kept = append(p.kept, path)
					}
				}
			}
			return p
		}, 0},
		{Secrets, func(t *testing.T, s *Store, c *clock) paths {
			p := filepath.Join(s.Dir(), "secrets", "api-key")
			if err := files(map[string][]byte{"secrets/api-key": []byte("x")})(s.Dir()); err != nil {
				t.Fatal(err)
			}
			os.Chtimes(p, old, old)
			return paths{kept: []string{p}}
		}, 0},
		{Temp, func(t *testing.T, s *Store, c *clock) paths {
			held, remove, err := s.TempDir("run-")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { remove() })
			deadOld := filepath.Join(s.Dir(), "tmp", "java-dead")
			deadFresh := filepath.Join(s.Dir(), "tmp", "java-writing")
			legacy := filepath.Join(s.Dir(), "run", "4711")
			for _, d := range []string{deadOld, deadFresh, legacy} {
				if err := os.MkdirAll(d, 0o700); err != nil {
					t.Fatal(err)
				}
			}
			// The clock reads recent+1h at Prune.
			justNow := recent.Add(time.Hour - 10*time.Second)
			for p, at := range map[string]time.Time{held: old, deadOld: old, deadFresh: justNow, legacy: old} {
				if err := os.Chtimes(p, at, at); err != nil {
					t.Fatal(err)
				}
			}
			return paths{gone: []string{deadOld, legacy}, kept: []string{held, deadFresh}}
		}, 2},
		{Other, func(t *testing.T, s *Store, c *clock) paths {
			p := filepath.Join(s.Dir(), "notes.txt")
			if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
				t.Fatal(err)
			}
			os.Chtimes(p, old, old)
			return paths{kept: []string{p}}
		}, 0},
	}
	for _, tc := range tests {
		t.Run(tc.kind.String(), func(t *testing.T) {
			c := &clock{t: old}
			s := openStore(t, t.TempDir(), WithClock(c.now))
			p := tc.make(t, s, c)
			c.set(recent.Add(time.Hour))
			removed, err := s.Prune(context.Background(), cutoff)
			if err != nil {
				t.Fatalf("Prune() = %v", err)
			}
			got := removed.Of(tc.kind)
			if got.Entries != tc.wantEntries {
				t.Errorf("Prune() removed %d %s, want %d", got.Entries, tc.kind.Noun(), tc.wantEntries)
			}
			if (len(p.gone) > 0) != (got.Bytes > 0) {
				t.Errorf("Prune() freed %d bytes of %s, want some: %v", got.Bytes, tc.kind, len(p.gone) > 0)
			}
			for _, path := range p.gone {
				if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("Prune() kept %s: %v", s.rel(path), err)
				}
			}
			for _, path := range p.kept {
				if _, err := os.Lstat(path); err != nil {
					t.Errorf("Prune() removed %s: %v", s.rel(path), err)
				}
			}
			for _, k := range removed {
				if k.Kind != tc.kind && (k.Entries != 0 || k.Bytes != 0) {
					t.Errorf("Prune() removed %+v, want nothing of %s", k, k.Kind)
				}
			}
			if tc.kind == Images {
				idx, err := layout.ImageIndexFromPath(filepath.Join(s.Dir(), "images"))
				if err != nil {
					t.Fatal(err)
				}
				if err := validate.Index(idx); err != nil {
					t.Errorf("the local image store after Prune() is not valid: %v", err)
				}
			}
		})
	}
}

// treeCase makes one directory entry at old, and one at recent.
func treeCase(k Kind, prefix string) func(t *testing.T, s *Store, c *clock) paths {
	return func(t *testing.T, s *Store, c *clock) paths {
		c.set(t0)
		gone := mustTree(t, s, k, prefix+key("old").Hex, files(map[string][]byte{"a/f": []byte("old")}))
		c.set(t0.Add(10 * 24 * time.Hour))
		kept := mustTree(t, s, k, prefix+key("new").Hex, files(map[string][]byte{"a/f": []byte("new")}))
		return paths{gone: []string{gone}, kept: []string{kept}}
	}
}

// fileCase makes one file entry at old, and one at recent.
func fileCase(k Kind) func(t *testing.T, s *Store, c *clock) paths {
	return func(t *testing.T, s *Store, c *clock) paths {
		c.set(t0)
		gone := mustFile(t, s, k, []byte("old"), sha256Of([]byte("old")))
		c.set(t0.Add(10 * 24 * time.Hour))
		kept := mustFile(t, s, k, []byte("new"), sha256Of([]byte("new")))
		return paths{gone: []string{gone}, kept: []string{kept}}
	}
}

type paths = struct{ gone, kept []string }

func blobsOf(t *testing.T, img v1.Image) []v1.Hash {
	t.Helper()
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	out := []v1.Hash{d, m.Config.Digest}
	for _, l := range m.Layers {
		out = append(out, l.Digest)
	}
	return out
}

func TestPruneKeepsHeldEntries(t *testing.T) {
	ctx := context.Background()
	c := &clock{t: t0}
	s := openStore(t, t.TempDir(), WithClock(c.now))
	tree, err := s.Tree(ctx, Rootfs, key("running").Hex, files(map[string][]byte{"bin/sh": []byte("x")}))
	if err != nil {
		t.Fatal(err)
	}
	file, err := s.File(ctx, DebianFiles, "x.deb", sha256Of([]byte("deb")), writeContent([]byte("deb")))
	if err != nil {
		t.Fatal(err)
	}
	c.set(t0.Add(30 * 24 * time.Hour))
	for _, op := range []struct {
		name string
		run  func() (Usage, error)
	}{
		{"Prune", func() (Usage, error) { return s.Prune(ctx, c.now()) }},
		{"Clear", func() (Usage, error) { return s.Clear(ctx) }},
	} {
		if _, err := op.run(); err != nil {
			t.Fatalf("%s() = %v", op.name, err)
		}
		for _, l := range []*Lease{tree, file} {
			if _, err := os.Stat(l.Path); err != nil {
				t.Errorf("%s() removed %s, which is held: %v", op.name, s.rel(l.Path), err)
			}
		}
	}
	tree.Close()
	file.Close()
	removed, err := s.Prune(ctx, c.now())
	if err != nil {
		t.Fatal(err)
	}
	if got := removed.Of(Rootfs).Entries + removed.Of(DebianFiles).Entries; got != 2 {
		t.Errorf("Prune() after release removed %d entries, want 2", got)
	}
}

func TestClear(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, t.TempDir())
	put := fillEveryKind(t, s)
	removed, err := s.Clear(ctx)
	if err != nil {
		t.Fatalf("Clear() = %v", err)
	}
	for _, k := range Kinds() {
		want := put[k]
		if k == Temp {
			want-- // the held scratch folder stays
		}
		if got := removed.Of(k).Entries; got != want {
			t.Errorf("Clear() removed %d %s, want %d", got, k.Noun(), want)
		}
	}
	u, err := s.Usage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range u {
		want := 0
		if k.Kind == Temp {
			want = 1
		}
		if k.Entries != want {
			t.Errorf("Usage() after Clear(): %d %s, want %d", k.Entries, k.Kind.Noun(), want)
		}
	}
}

func TestTreeAndFile(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, t.TempDir())
	fills := 0
	fill := func(dir string) error {
		fills++
		return files(map[string][]byte{"f": []byte("one")})(dir)
	}
	first := mustTree(t, s, NodeModules, key("a").Hex, fill)
	if want := filepath.Join(s.Dir(), "node", "modules", key("a").Hex); first != want {
		t.Errorf("Tree() = %s, want %s", first, want)
	}
	if again := mustTree(t, s, NodeModules, key("a").Hex, fill); again != first || fills != 1 {
		t.Errorf("Tree() on a hit = %s after %d fills, want %s after 1", again, fills, first)
	}
	boom := errors.New("offline")
	if _, err := s.Tree(ctx, NodeModules, key("b").Hex, func(string) error { return boom }); !errors.Is(err, boom) {
		t.Errorf("Tree() with a failing fill = %v, want %v", err, boom)
	}

	data := []byte("package")
	want := sha256Of(data)
	path := mustFile(t, s, DebianFiles, data, want)
	if err := os.WriteFile(path, []byte("pACKAGE"), 0o644); err != nil {
		t.Fatal(err)
	}
	refetched := 0
	l, err := s.File(ctx, DebianFiles, want.Hex+".bin", want, func(p string) error {
		refetched++
		return writeContent(data)(p)
	})
	if err != nil || refetched != 1 {
		t.Fatalf("File() over a corrupt entry = %v after %d fills, want a fill", err, refetched)
	}
	l.Close()
	if got, _ := os.ReadFile(path); string(got) != string(data) {
		t.Errorf("File() left %q, want %q", got, data)
	}

	var de *DigestError
	_, err = s.File(ctx, NodeRuntimes, "x.tgz", sha512Of([]byte("pinned")), writeContent([]byte("tampered")))
	if !errors.As(err, &de) {
		t.Fatalf("File() with other content = %v, want a *DigestError", err)
	}
	if _, err := os.Stat(filepath.Join(s.Dir(), "node", "sha512", "x.tgz")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("File() kept content that does not match: %v", err)
	}
	if left, _ := os.ReadDir(s.tmpDir()); len(left) != 0 {
		t.Errorf("failed fills left %d temporary files", len(left))
	}
}

func TestKeys(t *testing.T) {
	s := openStore(t, t.TempDir())
	ok := func(string) error { return nil }
	tests := []struct {
		kind    Kind
		key     string
		wantErr bool
	}{
		{JavaOutputs, "deps/abc", false},
		{JavaOutputs, "abc", true},
		{JavaOutputs, "deps/../../etc", true},
		{NodeModules, "abc", false},
		{NodeModules, "a/b", true},
		{NodeModules, ".tmp-abc", true},
		{NodeModules, "..", true},
		{NodeModules, "", true},
		{Layers, "abc", true},
		{Images, "abc", true},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%s %q", tc.kind, tc.key), func(t *testing.T) {
			l, err := s.Tree(context.Background(), tc.kind, tc.key, ok)
			if (err != nil) != tc.wantErr {
				t.Errorf("Tree(%s, %q) = %v, want error %v", tc.kind, tc.key, err, tc.wantErr)
			}
			l.Close()
		})
	}
}

func TestKindNames(t *testing.T) {
	seen := map[string]bool{}
	for _, k := range Kinds() {
		b, err := k.MarshalText()
		if err != nil {
			t.Fatalf("%d.MarshalText() = %v", k, err)
		}
		if seen[string(b)] {
			t.Errorf("two kinds are named %s", b)
		}
		seen[string(b)] = true
		var back Kind
		if err := back.UnmarshalText(b); err != nil || back != k {
			t.Errorf("UnmarshalText(%s) = %v, %v, want %v", b, back, err, k)
		}
	}
}

func TestConcurrentFills(t *testing.T) {
	tests := []struct {
		name string
		get  func(s *Store, fills *atomic.Int32) (*Lease, error)
		want func(path string) error
	}{
		{"tree", func(s *Store, fills *atomic.Int32) (*Lease, error) {
			return s.Tree(context.Background(), JavaOutputs, "deps/shared", func(dir string) error {
				fills.Add(1)
				return files(map[string][]byte{"a.jar": []byte("jar"), "b/c.jar": []byte("jar")})(dir)
			})
		}, func(path string) error {
			b, err := os.ReadFile(filepath.Join(path, "b", "c.jar"))
			if err == nil && string(b) != "jar" {
				err = fmt.Errorf("b/c.jar holds %q", b)
			}
			return err
		}},
		{"file", func(s *Store, fills *atomic.Int32) (*Lease, error) {
			return s.File(context.Background(), DebianFiles, "shared.deb", sha256Of([]byte("deb")), func(p string) error {
				fills.Add(1)
				return writeContent([]byte("deb"))(p)
			})
		}, func(path string) error {
			b, err := os.ReadFile(path)
			if err == nil && string(b) != "deb" {
				err = fmt.Errorf("holds %q", b)
			}
			return err
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			var fills atomic.Int32
			var wg sync.WaitGroup
			const n = 8
			got := make([]string, n)
			errs := make([]error, n)
			for i := range n {
				wg.Go(func() {
					// Separate Store values stand in for separate processes.
					s, err := Open(dir)
					if err != nil {
						errs[i] = err
						return
					}
					l, err := tc.get(s, &fills)
					if err == nil {
						got[i] = l.Path
						l.Close()
					}
					errs[i] = err
				})
			}
			wg.Wait()
			for i := range n {
				if errs[i] != nil || got[i] != got[0] {
					t.Errorf("#%d = %s, %v, want %s", i, got[i], errs[i], got[0])
				}
			}
			if err := tc.want(got[0]); err != nil {
				t.Errorf("the entry after concurrent fills: %v", err)
			}
			if left, _ := os.ReadDir(filepath.Join(dir, "tmp")); len(left) != 0 {
				t.Errorf("concurrent fills left %d temporary files", len(left))
			}
			t.Logf("%d fills for %d callers", fills.Load(), n)
		})
	}
}

// TestCrashMidFill kills a process in the middle of a fill: what it left
// must not be listed as an entry nor served, and the next Prune removes it.
func TestCrashMidFill(t *testing.T) {
	tests := []struct {
		name string
		kind Kind
	}{
		{"tree", JavaOutputs},
		{"file", DebianFiles},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			dir := t.TempDir()
			ready := filepath.Join(t.TempDir(), "ready")
			cmd := exec.Command(os.Args[0], "-test.run=^TestCrashHelper$")
			cmd.Env = append(os.Environ(), "KILN_CACHE_CRASH="+dir+"|"+tc.name+"|"+ready)
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(20 * time.Second)
			for {
				if _, err := os.Stat(ready); err == nil {
					break
				}
				if time.Now().After(deadline) {
					cmd.Process.Kill()
					cmd.Wait()
					t.Fatal("the helper never reached the middle of its fill")
				}
				time.Sleep(10 * time.Millisecond)
			}
			cmd.Process.Signal(syscall.SIGKILL)
			cmd.Wait()

			c := &clock{t: time.Now()}
			s := openStore(t, dir, WithClock(c.now))
			u, err := s.Usage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if got := u.Of(tc.kind).Entries; got != 0 {
				t.Errorf("Usage() lists %d %s after a crash mid-fill, want none", got, tc.kind.Noun())
			}
			if got := u.Of(Temp).Entries; got != 1 {
				t.Errorf("Usage() lists %d temporary files after a crash mid-fill, want 1", got)
			}
			fills := 0
			content := []byte("whole")
			var l *Lease
			if tc.kind == JavaOutputs {
				l, err = s.Tree(ctx, JavaOutputs, "deps/k", func(d string) error {
					fills++
					return files(map[string][]byte{"f": content})(d)
				})
			} else {
				l, err = s.File(ctx, DebianFiles, "k.deb", sha256Of(content), func(p string) error {
					fills++
					return writeContent(content)(p)
				})
			}
			if err != nil || fills != 1 {
				t.Fatalf("get after a crash = %v after %d fills, want the entry made anew", err, fills)
			}
			l.Close()
			// What the dead process left is no one's: gone once it is older
			// than the grace period.
			c.set(time.Now().Add(2 * grace))
			removed, err := s.Prune(ctx, time.Time{})
			if err != nil {
				t.Fatal(err)
			}
			if got := removed.Of(Temp).Entries; got != 1 {
				t.Errorf("Prune() removed %d temporary files, want the dead fill's", got)
			}
			if left, _ := os.ReadDir(s.tmpDir()); len(left) != 0 {
				t.Errorf("after Prune() the temporary folder holds %d files", len(left))
			}
		})
	}
}

// TestCrashHelper is the process TestCrashMidFill kills.
func TestCrashHelper(t *testing.T) {
	arg := os.Getenv("KILN_CACHE_CRASH")
	if arg == "" {
		t.Skip("run by TestCrashMidFill")
	}
	parts := strings.Split(arg, "|")
	dir, shape, ready := parts[0], parts[1], parts[2]
	s, err := Open(dir, WithBootID("boot-a"))
	if err != nil {
		t.Fatal(err)
	}
	hang := func(path string) error {
		os.WriteFile(ready, nil, 0o644)
		time.Sleep(time.Minute)
		return nil
	}
	if shape == "tree" {
		s.Tree(context.Background(), JavaOutputs, "deps/k", func(d string) error {
			if err := files(map[string][]byte{"f": []byte("ha")})(d); err != nil {
				return err
			}
			return hang(d)
		})
		return
	}
	s.File(context.Background(), DebianFiles, "k.deb", sha256Of([]byte("whole")), func(p string) error {
		if err := writeContent([]byte("wh"))(p); err != nil {
			return err
		}
		return hang(p)
	})
}

// The layer store's blobs and keys of a Put that fails are not kept; a
// leftover of a dead Put is neither an entry nor a blob Get returns.
func TestLayerLeftovers(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, t.TempDir())
	// What an earlier version's dead Put left: a temporary key file.
	if err := os.WriteFile(filepath.Join(s.keysDir(), "."+key("a").Hex+".json.tmp-1"), []byte(`{"digest":`), 0o644); err != nil {
		t.Fatal(err)
	}
	entries, err := s.List(ctx)
	if err != nil || len(entries) != 0 {
		t.Errorf("List() = %v, %v, want no entries", entries, err)
	}
	if _, err := s.Get(ctx, key("a")); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get() = %v, want ErrNotFound", err)
	}
	u, err := s.Usage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := u.Of(Layers).Entries; got != 0 {
		t.Errorf("Usage() counts %d layers, want 0", got)
	}
}

// A writer of the local image store holds it; Prune then leaves the
// layout alone.
func TestPruneWaitsForImageWriters(t *testing.T) {
	ctx := context.Background()
	c := &clock{t: t0}
	s := openStore(t, t.TempDir(), WithClock(c.now))
	dir := filepath.Join(s.Dir(), "images")
	_, first := writeImages(t, dir, "hello:dev")
	writeImages(t, dir, "hello:dev")
	unreachable := blobsOf(t, first)[0]
	path := filepath.Join(dir, "blobs", unreachable.Algorithm, unreachable.Hex)
	if err := os.Chtimes(path, t0, t0); err != nil {
		t.Fatal(err)
	}
	c.set(t0.Add(30 * 24 * time.Hour))
	lock, err := LockImages(dir)
	if err != nil {
		t.Fatalf("LockImages() = %v", err)
	}
	if _, err := s.Prune(ctx, c.now()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Errorf("Prune() removed %s while a writer held the layout: %v", s.rel(path), err)
	}
	lock.Close()
	if _, err := s.Prune(ctx, c.now()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Prune() kept %s once the writer was done: %v", s.rel(path), err)
	}
}

// TestSealedTree edits a file of a sealed tree: the process that checked
// it trusts it still, and the next process's first use (forgetting the
// checks stands for a new process) fills the entry again; an unchanged
// tree is used as it is.
func TestSealedTree(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, t.TempDir())
	fills := 0
	fill := func(dir string) error {
		fills++
		return os.WriteFile(filepath.Join(dir, "served"), []byte("original"), 0o644)
	}
	use := func() string {
		t.Helper()
		l, err := s.Tree(ctx, Rootfs, "img", fill, Sealed())
		if err != nil {
			t.Fatalf("Tree() = %v", err)
		}
		defer l.Close()
		b, err := os.ReadFile(filepath.Join(l.Path, "served"))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	use()
	if got := use(); got != "original" || fills != 1 {
		t.Fatalf("unchanged sealed tree: content %q after %d fills, want original after 1", got, fills)
	}
	l, err := s.Tree(ctx, Rootfs, "img", fill, Sealed())
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(l.Path, "served")
	l.Close()
	if err := os.WriteFile(path, []byte("tampered"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := xattr.Get(filepath.Dir(path), sealAttr); errors.Is(err, errors.ErrUnsupported) {
		t.Skip("no extended attributes here: trees are not sealed")
	}
	if got := use(); got != "tampered" || fills != 1 {
		t.Errorf("edited sealed tree, same process: content %q after %d fills, want tampered after 1 (checked once)", got, fills)
	}
	ForgetSealChecks()
	if got := use(); got != "original" || fills != 2 {
		t.Errorf("edited sealed tree, next process: content %q after %d fills, want original after 2", got, fills)
	}
}

// TestTreeFillsOncePerProcess has two Stores of one directory ask for one
// missing tree at once: the second waits for the first's fill and uses it.
func TestTreeFillsOncePerProcess(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	var fills atomic.Int32
	fill := func(d string) error {
		fills.Add(1)
		time.Sleep(50 * time.Millisecond)
		return os.WriteFile(filepath.Join(d, "f"), []byte("x"), 0o644)
	}
	var wg sync.WaitGroup
	for range 2 {
		s := openStore(t, dir)
		wg.Go(func() {
			l, err := s.Tree(ctx, RootfsLayers, "layer", fill, Sealed())
			if err != nil {
				t.Errorf("Tree() = %v", err)
				return
			}
			l.Close()
		})
	}
	wg.Wait()
	if n := fills.Load(); n != 1 {
		t.Errorf("two Stores asking at once filled the tree %d times, want 1", n)
	}
}
