package packtest

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/kiln-build/kiln/builder"
	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/languages"
	"github.com/kiln-build/kiln/layers"
)

var update = flag.Bool("update", false, "rewrite the golden digest files under testdata")

// Epoch is the fixed time every golden build stamps its layers with.
var Epoch = time.Unix(1700000000, 0).UTC()

// Platform is the platform golden images are built for.
var Platform = v1.Platform{OS: "linux", Architecture: "amd64"}

// Bases answers every base name with one small fixed layer and config, so
// that golden digests depend on the pack's layers only; the runtime bases
// have tests of their own.
type Bases struct{}

// Base implements builder.BaseSource.
func (Bases) Base(ctx context.Context, name string, p v1.Platform, packages []string) (*builder.Base, error) {
	files := []layers.File{
		layers.Bytes("etc/passwd", 0o644, []byte("root:x:0:0::/root:/sbin/nologin\napp:x:65532:65532::/home/app:/sbin/nologin\n")),
		layers.Bytes("etc/kiln-test-base", 0o644, []byte(name+"\n")),
	}
	return &builder.Base{
		Name:   name,
		Steps:  []layers.Step{layers.FilesStep("test base", files)},
		Config: v1.Config{User: "65532:65532", Env: []string{"PATH=/usr/local/bin:/usr/bin:/bin"}, WorkingDir: "/home/app"},
	}, nil
}

var _ builder.BaseSource = Bases{}

// NewBuilder returns a builder with an empty cache of its own that builds
// with pack on Bases and a fixed watchdog.
func NewBuilder(t testing.TB, pack languages.Pack, opts ...builder.Option) *builder.Builder {
	t.Helper()
	store, err := cache.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	wd := filepath.Join(t.TempDir(), "fwatchdog")
	if err := os.WriteFile(wd, []byte("kiln test watchdog\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	opts = append([]builder.Option{
		builder.WithPack(pack),
		builder.WithBases(Bases{}),
		builder.WithWatchdog(func(v1.Platform) (string, error) { return wd, nil }),
	}, opts...)
	b, err := builder.New(store, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Golden is what a golden file records of an image.
type Golden struct {
	// Toolchain names the host tools whose output is in the image, with
	// their versions when the file was written.
	Toolchain map[string]string `json:"toolchain"`
	Image     string            `json:"image"`
	Config    string            `json:"config"`
	// Layers are the image's layers, bottom first.
	Layers []Layer `json:"layers"`
}

// Layer is one layer of a golden image.
type Layer struct {
	Step   string `json:"step"`
	Digest string `json:"digest"`
}

// Case is one golden build.
type Case struct {
	// Golden is the golden file, testdata/<case>/golden.json.
	Golden string
	// Function is the function to build. Epoch and Platform default to
	// the package's.
	Function languages.Function
	// Toolchain names this machine's tools and their versions.
	Toolchain map[string]string
	// NewBuilder returns a builder with an empty cache; it is called once
	// per build.
	NewBuilder func(t testing.TB) *builder.Builder
}

// Check builds c.Function twice, each with a new builder, and wants one
// digest and a valid image; then it compares the image with the golden
// file, or rewrites it under -update. When the golden file was made with
// other tool versions the comparison is skipped, naming them.
func Check(t *testing.T, c Case) {
	t.Helper()
	fn := c.Function
	if fn.Epoch.IsZero() {
		fn.Epoch = Epoch
	}
	if fn.Platform.OS == "" {
		fn.Platform = Platform
	}
	ctx := context.Background()
	var got [2]Golden
	for i := range got {
		res, err := c.NewBuilder(t).Build(ctx, fn)
		if err != nil {
			t.Fatalf("Build() #%d = %v", i+1, err)
		}
		if err := validate.Image(res.Image); err != nil {
			t.Fatalf("validate.Image() #%d = %v", i+1, err)
		}
		if got[i], err = record(res); err != nil {
			t.Fatal(err)
		}
		got[i].Toolchain = c.Toolchain
	}
	if d := diff(got[0], got[1]); d != "" {
		t.Fatalf("two builds of %s differ (-first +second):\n%s", fn.Dir, d)
	}
	if *update {
		if err := write(c.Golden, got[0]); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s", c.Golden)
		return
	}
	want, err := read(c.Golden)
	if err != nil {
		t.Fatalf("%v (run go test -run %s -update to write it)", err, t.Name())
	}
	if diff := toolchainDiff(want.Toolchain, c.Toolchain); diff != "" {
		t.Skipf("%s was made with %s; not comparing digests (run with -update to take this machine's)", c.Golden, diff)
	}
	if d := diff(want, got[0]); d != "" {
		t.Errorf("image of %s differs from %s (-golden +got):\n%s\nIf the change is meant, run go test -run %s -update.", fn.Dir, c.Golden, d, t.Name())
	}
}

// diff lists the digests that differ, one per line, "" when none does.
func diff(a, b Golden) string {
	lines := func(g Golden) []string {
		out := []string{"image " + g.Image, "config " + g.Config}
		for _, l := range g.Layers {
			out = append(out, "layer "+l.Digest+" "+l.Step)
		}
		return out
	}
	la, lb := lines(a), lines(b)
	var out strings.Builder
	for i := range max(len(la), len(lb)) {
		var x, y string
		if i < len(la) {
			x = la[i]
		}
		if i < len(lb) {
			y = lb[i]
		}
		if x != y {
			fmt.Fprintf(&out, "- %s\n+ %s\n", x, y)
		}
	}
	return out.String()
}

func record(res *builder.Result) (Golden, error) {
	d, err := res.Image.Digest()
	if err != nil {
		return Golden{}, err
	}
	cd, err := res.Image.ConfigName()
	if err != nil {
		return Golden{}, err
	}
	g := Golden{Image: d.String(), Config: cd.String()}
	for _, l := range res.Layers {
		g.Layers = append(g.Layers, Layer{Step: l.Name, Digest: l.Digest.String()})
	}
	return g, nil
}

// toolchainDiff says how the tools of the golden file and this machine's
// differ, "" when they do not.
func toolchainDiff(golden, here map[string]string) string {
	var diffs []string
	for _, name := range slices.Sorted(maps.Keys(golden)) {
		if golden[name] != here[name] {
			h := here[name]
			if h == "" {
				h = "none"
			}
			diffs = append(diffs, fmt.Sprintf("%s %q, this machine has %q", name, golden[name], h))
		}
	}
	for _, name := range slices.Sorted(maps.Keys(here)) {
		if _, ok := golden[name]; !ok {
			diffs = append(diffs, fmt.Sprintf("no %s, this machine has %q", name, here[name]))
		}
	}
	return strings.Join(diffs, "; ")
}

func read(path string) (Golden, error) {
	var g Golden
	b, err := os.ReadFile(path)
	if err != nil {
		return g, fmt.Errorf("reading the golden file: %w", err)
	}
	if err := json.Unmarshal(b, &g); err != nil {
		return g, fmt.Errorf("reading %s: %w", path, err)
	}
	if g.Image == "" {
		return g, errors.New(path + " has no image digest")
	}
	return g, nil
}

func write(path string, g Golden) error {
	b, err := json.MarshalIndent(g, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("writing the golden file: %w", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("writing the golden file: %w", err)
	}
	return nil
}

// Version runs a host tool with args, as a golden test records the tools
// whose output an image holds, and returns the first line it prints. It
// skips the test when the tool is not installed.
func Version(t testing.TB, env []string, tool string, args ...string) string {
	t.Helper()
	path, err := exec.LookPath(tool)
	if err != nil {
		t.Skipf("no %s on PATH: %v", tool, err)
	}
	cmd := exec.Command(path, args...)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", tool, strings.Join(args, " "), err, out)
	}
	first, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return strings.TrimSpace(first)
}
