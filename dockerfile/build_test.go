package dockerfile

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/kiln-build/kiln/cache"
)

var update = flag.Bool("update", false, "rewrite the expected.json of every case")

var testEpoch = time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)

// testCase is a case's case.json: the inputs besides its context folder.
type testCase struct {
	BuildArgs map[string]string   `json:"build_args,omitempty"`
	Target    string              `json:"target,omitempty"`
	Platform  string              `json:"platform,omitempty"`
	Bases     map[string]baseSpec `json:"bases,omitempty"`
	// Lenient runs commands the fake runner does not know as no-ops.
	Lenient bool `json:"lenient,omitempty"`
}

// result is a case's expected.json.
type result struct {
	Error    string      `json:"error,omitempty"`
	Platform string      `json:"platform,omitempty"`
	Config   *v1.Config  `json:"config,omitempty"`
	Layers   [][]string  `json:"layers,omitempty"`
	History  []historyAt `json:"history,omitempty"`
	Runs     []RunSpec   `json:"runs,omitempty"`
}

type historyAt struct {
	CreatedBy  string `json:"created_by"`
	EmptyLayer bool   `json:"empty_layer,omitempty"`
}

// TestCases builds every folder under testdata/cases: context/ is the
// build context (with its Dockerfile), case.json the options and the base
// images, expected.json the image or the error.
func TestCases(t *testing.T) {
	srv := httptest.NewServer(http.FileServer(http.Dir("testdata/http")))
	defer srv.Close()
	dirs, err := filepath.Glob("testdata/cases/*")
	if err != nil {
		t.Fatal(err)
	}
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			var tc testCase
			readJSON(t, filepath.Join(dir, "case.json"), &tc)
			runner := &fakeRunner{lenient: tc.Lenient}
			opts := testOptions(t, filepath.Join(dir, "context"), tc, runner)
			if df, err := os.ReadFile(filepath.Join(dir, "context", "Dockerfile")); err == nil && strings.Contains(string(df), "SERVER") {
				opts.BuildArgs["SERVER"] = srv.URL
			}
			got := describe(t, context.Background(), opts)
			// Stages build at once: the RUNs are listed in a fixed order.
			got.Runs = runner.specs
			slices.SortStableFunc(got.Runs, func(a, b RunSpec) int { return strings.Compare(fmt.Sprint(a), fmt.Sprint(b)) })
			b, err := json.MarshalIndent(got, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			b = []byte(strings.ReplaceAll(string(b), srv.URL, "$SERVER"))
			expected := filepath.Join(dir, "expected.json")
			if *update {
				if err := os.WriteFile(expected, append(b, '\n'), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			var want, gotNorm result
			readJSON(t, expected, &want)
			if err := json.Unmarshal(b, &gotNorm); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, gotNorm); diff != "" {
				t.Errorf("Build() differs from expected.json (-want +got):\n%s", diff)
			}
		})
	}
}

func testOptions(t *testing.T, contextDir string, tc testCase, runner StepRunner) Options {
	t.Helper()
	store, err := cache.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{
		Context:       contextDir,
		BuildArgs:     map[string]string{},
		Target:        tc.Target,
		Platform:      v1.Platform{OS: "linux", Architecture: "amd64"},
		BuildPlatform: v1.Platform{OS: "linux", Architecture: "amd64"},
		Epoch:         testEpoch,
		Bases:         fakeBases(tc.Bases),
		Runner:        runner,
		Cache:         store,
		Indexes:       store,
	}
	for k, v := range tc.BuildArgs {
		opts.BuildArgs[k] = v
	}
	if tc.Platform != "" {
		if opts.Platform, err = parsePlatform(tc.Platform, v1.Platform{}); err != nil {
			t.Fatal(err)
		}
	}
	return opts
}

// describe builds and describes the image, or the error.
func describe(t *testing.T, ctx context.Context, opts Options) result {
	t.Helper()
	img, err := Build(ctx, opts)
	if err != nil {
		var de *Error
		if !errors.As(err, &de) {
			t.Errorf("Build() error %v is not a *dockerfile.Error", err)
		}
		return result{Error: err.Error()}
	}
	if err := validate.Image(img); err != nil {
		t.Fatalf("validate.Image() = %v", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if !cf.Created.Time.Equal(testEpoch) {
		t.Errorf("config created = %v, want %v", cf.Created, testEpoch)
	}
	got := result{Platform: formatPlatform(*cf.Platform()), Config: &cf.Config}
	ls, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range ls {
		entries, err := listLayer(l)
		if err != nil {
			t.Fatal(err)
		}
		got.Layers = append(got.Layers, entries)
	}
	nonEmpty := 0
	for _, h := range cf.History {
		got.History = append(got.History, historyAt{CreatedBy: h.CreatedBy, EmptyLayer: h.EmptyLayer})
		if !h.EmptyLayer {
			nonEmpty++
		}
		if h.Comment == historyComment && !h.Created.Time.Equal(testEpoch) {
			t.Errorf("history %q created = %v, want %v", h.CreatedBy, h.Created, testEpoch)
		}
	}
	if nonEmpty != len(ls) {
		t.Errorf("history has %d entries with a layer, the image %d layers", nonEmpty, len(ls))
	}
	return got
}

func readJSON(t *testing.T, name string, v any) {
	t.Helper()
	b, err := os.ReadFile(name)
	if errors.Is(err, os.ErrNotExist) {
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

// barrierRunner fails a RUN unless another starts while it waits.
type barrierRunner struct {
	fakeRunner
	arrived chan struct{}
}

func (r *barrierRunner) Run(ctx context.Context, lower []v1.Layer, spec RunSpec) (v1.Layer, error) {
	select {
	case r.arrived <- struct{}{}:
	case <-r.arrived:
	case <-time.After(5 * time.Second):
		return nil, errors.New("ran alone: the other stage's RUN did not start meanwhile")
	}
	return r.fakeRunner.Run(ctx, lower, spec)
}

// TestStagesBuildTogether builds two independent stages at once.
func TestStagesBuildTogether(t *testing.T) {
	dir := writeContext(t, map[string]string{"Dockerfile": `FROM scratch AS a
RUN echo a > /a
FROM scratch AS b
RUN echo b > /b
FROM scratch
COPY --from=a /a /a
COPY --from=b /b /b
`})
	runner := &barrierRunner{arrived: make(chan struct{})}
	opts := testOptions(t, dir, testCase{}, runner)
	if _, err := Build(context.Background(), opts); err != nil {
		t.Fatalf("Build() = %v", err)
	}
	if got := runner.runs(); got != 2 {
		t.Errorf("Build() ran %d RUNs, want 2", got)
	}
}

// TestSourceDateEpochArg takes the epoch from the build arg when the
// options give none.
func TestSourceDateEpochArg(t *testing.T) {
	dir := writeContext(t, map[string]string{"Dockerfile": "FROM scratch\nCOPY a.txt /\n", "a.txt": "a\n"})
	opts := testOptions(t, dir, testCase{}, &fakeRunner{})
	opts.Epoch = time.Time{}
	opts.BuildArgs["SOURCE_DATE_EPOCH"] = "86400"
	img, err := Build(context.Background(), opts)
	if err != nil {
		t.Fatalf("Build() = %v", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Unix(86400, 0).UTC(); !cf.Created.Time.Equal(want) {
		t.Errorf("created = %v, want %v", cf.Created.Time, want)
	}
	opts.BuildArgs["SOURCE_DATE_EPOCH"] = "yesterday"
	if _, err := Build(context.Background(), opts); err == nil {
		t.Error("Build() with SOURCE_DATE_EPOCH=yesterday succeeded, want an error")
	}
}

// failingRunner fails every RUN with err.
type failingRunner struct {
	err error
}

func (r *failingRunner) Run(context.Context, []v1.Layer, RunSpec) (v1.Layer, error) {
	return nil, r.err
}

// sandboxRefused stands for run.SandboxDeniedError, whose type callers
// look for in a failed build.
type sandboxRefused struct{}

func (sandboxRefused) Error() string { return "no user namespace here\nsecond line" }

// TestRunErrorKeepsItsType: a failed RUN reads as one line at its
// Dockerfile line, and errors.As still finds the runner's error in it.
func TestRunErrorKeepsItsType(t *testing.T) {
	dir := writeContext(t, map[string]string{"Dockerfile": "FROM scratch\nRUN make\n"})
	opts := testOptions(t, dir, testCase{}, &failingRunner{err: fmt.Errorf("step make: %w", sandboxRefused{})})
	_, err := Build(context.Background(), opts)
	if err == nil || err.Error() != "Dockerfile:2: RUN make: step make: no user namespace here" {
		t.Errorf("Build() = %v, want the RUN's error at line 2, on one line", err)
	}
	var refused sandboxRefused
	if !errors.As(err, &refused) {
		t.Errorf("Build() = %v: errors.As finds no runner's error in it", err)
	}
}
