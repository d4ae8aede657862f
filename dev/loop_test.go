package dev

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kiln-build/kiln/builder"
	"github.com/kiln-build/kiln/languages"
	"github.com/kiln-build/kiln/languages/golang"
	"github.com/kiln-build/kiln/languages/packtest"
	"github.com/kiln-build/kiln/project"
)

// goBuilds builds targets with the real Go pack on packtest's bases, as
// project.Project does with the runtime ones: a result names the image
// by digest and what the build read outside the handler folder.
type goBuilds struct{ b *builder.Builder }

func (g goBuilds) BuildEach(ctx context.Context, targets []project.Target, out project.Output, parallel int) ([]project.Result, []error, error) {
	results := make([]project.Result, len(targets))
	errs := make([]error, len(targets))
	for i, t := range targets {
		results[i], errs[i] = g.BuildOne(ctx, t, out)
	}
	return results, errs, nil
}

func (g goBuilds) BuildOne(ctx context.Context, t project.Target, out project.Output) (project.Result, error) {
	r := project.Result{Name: t.Function.Name}
	res, err := g.b.Build(ctx, t.Function)
	if res != nil {
		r.Outside = res.Outside
	}
	if err != nil {
		return r, err
	}
	d, err := res.Image.Digest()
	if err != nil {
		return r, err
	}
	r.Image = "example.com/" + t.Function.Name + "@" + d.String()
	return r, nil
}

type noDeploy struct{}

func (noDeploy) Deploy(ctx context.Context, names []string, images map[string]project.Image) error {
	return nil
}

func writeFile(t *testing.T, p, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestLoopOutside: an edit in a folder go.mod's replace names, outside
// the handler folders, rebuilds the functions that name it, both of them,
// and no other; an edit beside it rebuilds nothing; once a function's
// go.mod no longer names it, an edit there rebuilds only the other.
func TestLoopOutside(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command")
	}
	parent := t.TempDir()
	const useLib = "module handler/function\n\ngo 1.22\n\nrequire example.com/lib v0.0.0\n\nreplace example.com/lib => ../lib\n"
	for _, fn := range []string{"fa", "fb"} {
		writeFile(t, filepath.Join(parent, fn, "go.mod"), useLib)
		writeFile(t, filepath.Join(parent, fn, "handler.go"), "package main\n\nimport \"example.com/lib\"\n\nfunc main() { println(lib.V) }\n")
	}
	writeFile(t, filepath.Join(parent, "fc", "go.mod"), "module handler/function\n\ngo 1.22\n")
	writeFile(t, filepath.Join(parent, "fc", "handler.go"), "package main\n\nfunc main() {}\n")
	writeFile(t, filepath.Join(parent, "lib", "go.mod"), "module example.com/lib\n\ngo 1.22\n")
	writeFile(t, filepath.Join(parent, "lib", "lib.go"), "package lib\n\nconst V = 1\n")
	writeFile(t, filepath.Join(parent, "other", "x.go"), "package other\n")

	pack, err := golang.New(golang.WithEnv(os.Environ()))
	if err != nil {
		t.Fatal(err)
	}
	var targets []project.Target
	for _, fn := range []string{"fa", "fb", "fc"} {
		targets = append(targets, project.Target{Function: languages.Function{
			Name: fn, Dir: filepath.Join(parent, fn), Lang: golang.LangMain,
			Platform: v1.Platform{OS: "linux", Architecture: runtime.GOARCH},
		}})
	}
	events := make(chan project.Event, 100)
	ctx, cancel := context.WithCancel(context.Background())
	st := &project.Stack{Names: []string{"fa", "fb", "fc"}}
	l := NewLoop(goBuilds{packtest.NewBuilder(t, pack)}, st, targets, project.Output{}, noDeploy{},
		WithProgress(func(e project.Event) { events <- e }), WithWatchOptions(WithDebounce(200*time.Millisecond)))
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run() = %v", err)
		}
	}()

	// rebuilt waits for the functions want to be live again and a quiet
	// second after, and returns the changes seen.
	rebuilt := func(want ...string) map[string][]string {
		t.Helper()
		changed := map[string][]string{}
		var live []string
		deadline := time.After(2 * time.Minute)
		quiet := time.NewTimer(time.Hour)
		for {
			select {
			case e := <-events:
				switch e := e.(type) {
				case Watching:
				case Changed:
					changed[e.Function] = e.Paths
				case Failed:
					t.Fatalf("%s failed: %v", e.Function, e.Err)
				case Live:
					if live = append(live, e.Function); len(live) >= len(want) {
						quiet.Reset(time.Second)
					}
				}
			case <-quiet.C:
				slices.Sort(live)
				if !slices.Equal(live, want) {
					t.Fatalf("rebuilt %v, want %v (changes %v)", live, want, changed)
				}
				return changed
			case <-deadline:
				t.Fatalf("rebuilt %v, want %v (changes %v)", live, want, changed)
			}
		}
	}
	waitWatching := time.After(2 * time.Minute)
	for watching := false; !watching; {
		select {
		case e := <-events:
			if f, ok := e.(Failed); ok {
				t.Fatalf("first build of %s: %v", f.Function, f.Err)
			}
			_, watching = e.(Watching)
		case <-waitWatching:
			t.Fatal("the loop never watched")
		}
	}

	writeFile(t, filepath.Join(parent, "lib", "lib.go"), "package lib\n\nconst V = 2\n")
	changed := rebuilt("fa", "fb")
	if want := []string{"../lib/lib.go"}; !slices.Equal(changed["fa"], want) || !slices.Equal(changed["fb"], want) {
		t.Errorf("changes = %v, want fa and fb with %v", changed, want)
	}

	writeFile(t, filepath.Join(parent, "other", "x.go"), "package other // edited\n")
	writeFile(t, filepath.Join(parent, "lib", ".git", "HEAD"), "ref: x\n")
	select {
	case e := <-events:
		t.Fatalf("an edit no build reads: %#v", e)
	case <-time.After(time.Second):
	}

	writeFile(t, filepath.Join(parent, "fb", "handler.go"), "package main\n\nfunc main() {}\n")
	writeFile(t, filepath.Join(parent, "fb", "go.mod"), "module handler/function\n\ngo 1.22\n")
	rebuilt("fb")
	writeFile(t, filepath.Join(parent, "lib", "lib.go"), "package lib\n\nconst V = 3\n")
	rebuilt("fa")
}
