package python

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/kiln-build/kiln/builder"
	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/languages"
	"github.com/kiln-build/kiln/layers"
)

// fakeBases stands in for the Debian base, which the end-to-end suite
// builds for real.
type fakeBases struct{}

func (fakeBases) Base(ctx context.Context, name string, p v1.Platform, packages []string) (*builder.Base, error) {
	if name != baseName {
		return nil, errors.New("no such base")
	}
	return &builder.Base{
		Name:   name,
		Steps:  []layers.Step{layers.FilesStep("test base", []layers.File{layers.Bytes("usr/bin/python3", 0o755, []byte("not python"))})},
		Config: v1.Config{User: "65532:65532", Env: []string{"PATH=/usr/bin:/bin"}},
	}, nil
}

func newBuilder(t *testing.T, env []string) *builder.Builder {
	t.Helper()
	store, err := cache.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	wd := filepath.Join(t.TempDir(), "fwatchdog")
	write(t, wd, "not a watchdog")
	b, err := builder.New(store,
		builder.WithPack(newPack(t, WithEnv(env))),
		builder.WithBases(fakeBases{}),
		builder.WithWatchdog(func(v1.Platform) (string, error) { return wd, nil }))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestBuild builds a function twice in two caches at two clock times for
// one digest, then proves that an edit of handler.py rebuilds the code
// layer only and one of requirements.txt the requirements layer only.
func TestBuild(t *testing.T) {
	needPython(t)
	env := kilndepIndex(t)
	dir := function(t, map[string]string{
		"handler.py":       "import kilndep\n\ndef handle(event, context):\n    return {'body': kilndep.VERSION}\n",
		"requirements.txt": "kilndep==1.0\n",
	})
	fn := languages.Function{Name: "fn", Dir: dir, Lang: LangHTTP, Platform: linuxAMD64}
	ctx := context.Background()
	b := newBuilder(t, env)
	first, err := b.Build(ctx, fn)
	if err != nil {
		t.Fatalf("Build() = %v", err)
	}
	if err := validate.Image(first.Image); err != nil {
		t.Fatalf("validate.Image() = %v", err)
	}
	var names []string
	for _, l := range first.Layers {
		names = append(names, l.Name)
	}
	if want := []string{"test base", "watchdog", "flask and waitress", "requirements", "python server", "handler code"}; !slices.Equal(names, want) {
		t.Errorf("Build() layers = %v, want %v", names, want)
	}
	time.Sleep(1100 * time.Millisecond)
	second, err := newBuilder(t, env).Build(ctx, fn)
	if err != nil {
		t.Fatal(err)
	}
	d1, _ := first.Image.Digest()
	d2, _ := second.Image.Digest()
	if d1 != d2 {
		t.Errorf("second build digest = %s, want %s", d2, d1)
	}

	edits := []struct {
		file, content, layer string
	}{
		{"handler.py", "import kilndep\n\ndef handle(event, context):\n    return {'body': 'v' + kilndep.VERSION}\n", "handler code"},
		{"requirements.txt", "kilndep==2.0\n", "requirements"},
	}
	prev := first
	for _, e := range edits {
		if err := os.WriteFile(filepath.Join(dir, e.file), []byte(e.content), 0o644); err != nil {
			t.Fatal(err)
		}
		res, err := b.Build(ctx, fn)
		if err != nil {
			t.Fatalf("Build() after editing %s = %v", e.file, err)
		}
		for i, l := range res.Layers {
			changed := l.Name == e.layer
			if l.Cached == changed {
				t.Errorf("after editing %s: layer %q cached = %v, want %v", e.file, l.Name, l.Cached, !changed)
			}
			if (l.Digest != prev.Layers[i].Digest) != changed {
				t.Errorf("after editing %s: layer %q digest changed = %v, want %v", e.file, l.Name, !changed, changed)
			}
		}
		prev = res
	}
}
