package project

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/kiln-build/kiln/deploy"
	"github.com/kiln-build/kiln/internal/step"
	"github.com/kiln-build/kiln/internal/usage"
	"github.com/kiln-build/kiln/stack"
)

// recorder collects a project's events.
type recorder struct {
	mu     sync.Mutex
	events []Event
}

func (r *recorder) record(e Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

func newProject(t *testing.T, env map[string]string, opts ...Option) (*Project, *recorder) {
	t.Helper()
	rec := &recorder{}
	getenv := func(k string) string { return env[k] }
	p, err := New(t.TempDir(), append([]Option{WithGetenv(getenv), WithProgress(rec.record)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return p, rec
}

func writeStack(t *testing.T, body string) {
	t.Helper()
	t.Chdir(t.TempDir())
	if err := os.WriteFile("stack.yml", []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

const twoFunctions = `provider:
  name: openfaas
functions:
  fig:
    skip_build: true
    image: ghcr.io/openfaas/figlet:${TAG:-latest}
    fprocess: figlet
  nolang:
    image: ghcr.io/me/nolang
    fprocess: cat
  hello:
    lang: go
    handler: ./hello
    image: ghcr.io/me/hello
`

func TestLoadStack(t *testing.T) {
	writeStack(t, twoFunctions)
	tests := []struct {
		name      string
		sel       Selection
		wantNames []string
		wantUsage bool
	}{
		{"all", Selection{Tag: "latest", Envsubst: true}, []string{"fig", "hello", "nolang"}, false},
		{"filter", Selection{Tag: "latest", Filter: "h*"}, []string{"hello"}, false},
		{"bad tag", Selection{Tag: "nightly"}, nil, true},
		{"bad regex", Selection{Tag: "latest", Regex: "("}, nil, true},
		{"no match is not a usage error", Selection{Tag: "latest", Filter: "zzz"}, nil, false},
		{"missing file is no usage error", Selection{Tag: "latest", File: "nope.yml"}, nil, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st, err := LoadStack(context.Background(), tc.sel, func(string) string { return "" })
			if tc.wantNames == nil {
				if err == nil || usage.Is(err) != tc.wantUsage {
					t.Fatalf("LoadStack(%+v) = %v, want an error, usage error %v", tc.sel, err, tc.wantUsage)
				}
				return
			}
			if err != nil {
				t.Fatalf("LoadStack(%+v) = %v", tc.sel, err)
			}
			if diff := cmp.Diff(tc.wantNames, slices.Sorted(slices.Values(st.Names))); diff != "" {
				t.Errorf("LoadStack(%+v).Names (-want +got):\n%s", tc.sel, diff)
			}
		})
	}
}

func TestTargets(t *testing.T) {
	writeStack(t, twoFunctions)
	if err := os.Mkdir("hello", 0o755); err != nil {
		t.Fatal(err)
	}
	p, rec := newProject(t, nil)
	s := BuildSettings{BuildArgs: map[string]string{"GOFLAGS": "-mod=vendor"}}
	targets, err := p.Targets(context.Background(), Selection{Tag: "latest", Envsubst: true}, nil, s)
	if err != nil {
		t.Fatal(err)
	}
	if len(targets) != 1 || targets[0].Function.Name != "hello" || targets[0].Ref.String() != "ghcr.io/me/hello:latest" {
		t.Fatalf("Targets() = %+v, want hello alone", targets)
	}
	if got := targets[0].Function.BuildArgs["GOFLAGS"]; got != "-mod=vendor" {
		t.Errorf("hello's GOFLAGS = %q, want the flag's", got)
	}
	want := []Event{
		Skipped{Function: "fig", Reason: "skip_build is set"},
		Skipped{Function: "nolang", Reason: "it has no lang (please provide a valid language)", Warning: true},
	}
	if diff := cmp.Diff(want, rec.events); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}

	for _, tc := range []struct {
		name string
		sel  Selection
		dir  Dir
		want string
	}{
		{"dir and stack", Selection{Filter: "x"}, Dir{Path: ".", Lang: "go", Image: "x"}, "give either DIR or a stack file"},
		{"no lang", Selection{}, Dir{Path: ".", Image: "x"}, "--lang is required with DIR"},
		{"no image", Selection{}, Dir{Path: ".", Lang: "go"}, "--image is required with DIR"},
		{"bad image", Selection{}, Dir{Path: ".", Lang: "go", Image: "Bad:Ref:x"}, "--image: image reference"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := p.Targets(context.Background(), tc.sel, &tc.dir, s)
			if !usage.Is(err) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Targets(%+v) = %v, want a usage error containing %q", tc.dir, err, tc.want)
			}
		})
	}
}

func TestTargetsNoneToBuild(t *testing.T) {
	writeStack(t, twoFunctions)
	p, _ := newProject(t, nil)
	_, err := p.Targets(context.Background(), Selection{Tag: "latest", Filter: "fig", Envsubst: true}, nil, BuildSettings{})
	if err == nil || !strings.Contains(err.Error(), "no function to build") {
		t.Errorf("Targets(fig) = %v, want no function to build", err)
	}
}

func TestWriteManifestsAllOrNothing(t *testing.T) {
	writeStack(t, twoFunctions+"    limits:\n      memory: lots\n")
	st, err := LoadStack(context.Background(), Selection{Tag: "latest", Envsubst: true}, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	images := map[string]Image{"hello": {Ref: "ghcr.io/me/hello@sha256:" + strings.Repeat("a", 64), FProcess: "./handler"}}
	if err := WithStackImages(context.Background(), st, images); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	err = WriteManifests(&out, "k8s", st, st.Names, images, DeploySettings{})
	var se *stack.Error
	if !errors.As(err, &se) || !strings.Contains(err.Error(), "functions.hello.limits.memory") {
		t.Errorf("WriteManifests() = %v, want a stack error at hello's memory limit", err)
	}
	if out.Len() > 0 {
		t.Errorf("WriteManifests() wrote %d bytes before failing, want none", out.Len())
	}
	if err := WriteManifests(&out, "helm", st, st.Names, images, DeploySettings{}); !usage.Is(err) {
		t.Errorf("WriteManifests(helm) = %v, want a usage error", err)
	}
}

func TestRemoteDeploy(t *testing.T) {
	writeStack(t, twoFunctions)
	var mu sync.Mutex
	var got []string
	gw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, r.Method+" "+r.URL.Path+" "+string(body))
		mu.Unlock()
		if strings.Contains(string(body), `"service":"nolang"`) {
			http.Error(w, "no room", http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(gw.Close)
	p, rec := newProject(t, map[string]string{"HOME": t.TempDir()})
	st, err := LoadStack(context.Background(), Selection{Tag: "latest", Envsubst: true}, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	images := map[string]Image{}
	if err := WithStackImages(context.Background(), st, images); err != nil {
		t.Fatal(err)
	}
	to, err := p.Remote(st, DeploySettings{Gateway: gw.URL, Mode: deploy.Update, ReadTemplate: true, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	err = to.Deploy(context.Background(), []string{"fig", "nolang"}, images)
	if err == nil || !strings.Contains(err.Error(), "deploying nolang") {
		t.Errorf("Deploy() = %v, want nolang's failure", err)
	}
	if len(got) != 2 || !strings.HasPrefix(got[0], "PUT /system/functions ") {
		t.Errorf("gateway saw %q, want a PUT per function", got)
	}
	want := []Event{Deployed{Function: "fig", Image: "ghcr.io/openfaas/figlet:latest", URL: gw.URL + "/function/fig", Code: http.StatusAccepted}}
	if diff := cmp.Diff(want, rec.events); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
}

func TestJSONLines(t *testing.T) {
	var out bytes.Buffer
	progress := JSONLines(&out)
	progress(Skipped{Function: "fig", Reason: "skip_build is set"})
	progress(DeployFailed{Err: errors.New("fig: no room")})
	want := `{"kind":"skipped","event":{"Function":"fig","Reason":"skip_build is set","Warning":false}}
{"kind":"deploy-failed","event":{"Err":"fig: no room"}}
`
	if diff := cmp.Diff(want, out.String()); diff != "" {
		t.Errorf("JSONLines (-want +got):\n%s", diff)
	}
}

func TestStepEvent(t *testing.T) {
	tests := []struct {
		name string
		in   step.Event
		want Event
	}{
		{"started", step.Event{ID: 1, Step: "compile", State: step.Started}, StepStarted{Function: "fn", Step: "compile", ID: 1}},
		{"running", step.Event{ID: 2, Step: "download tzdata", State: step.Running, Bytes: 5, Total: 9}, StepProgress{Function: "fn", Step: "download tzdata", ID: 2, Bytes: 5, Total: 9}},
		{"done", step.Event{ID: 3, Step: "push", State: step.Done, Bytes: 7, Count: 2, Unit: "layer", Took: time.Second}, StepDone{Function: "fn", Step: "push", ID: 3, Bytes: 7, Count: 2, Unit: "layer", Took: time.Second}},
		{"cached", step.Event{ID: 4, Step: "layer watchdog", State: step.Done, Bytes: 7, Cached: true}, StepDone{Function: "fn", Step: "layer watchdog", ID: 4, Bytes: 7, Cached: true}},
		{"failed", step.Event{ID: 5, Step: "compile", State: step.Failed, Err: errors.New("exit status 1")}, StepDone{Function: "fn", Step: "compile", ID: 5, Err: "exit status 1"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, stepEvent("fn", tc.in)); diff != "" {
				t.Errorf("stepEvent() (-want +got):\n%s", diff)
			}
		})
	}
}

// TestLoadStackNoFunctions: faas-cli reads an empty or missing functions
// key as no functions and then wants --image and --name; kiln says so at
// the key's line, after the warnings that may explain it.
func TestLoadStackNoFunctions(t *testing.T) {
	for _, tc := range []struct {
		name, body   string
		line         int
		wantWarnings []Event
	}{
		{"empty", "provider:\n  name: openfaas\nfunctions:\n", 3, nil},
		{"empty mapping", "provider:\n  name: openfaas\nfunctions: {}\n", 3, nil},
		{"misspelt", "provider:\n  name: openfaas\nfunctins:\n  a:\n    image: a\n", 1,
			[]Event{Warning{Path: "stack.yml", Line: 3, Msg: "functins: unknown key, ignored; did you mean functions?"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			writeStack(t, tc.body)
			p, rec := newProject(t, nil)
			_, err := p.LoadStack(context.Background(), Selection{Tag: "latest", Envsubst: true})
			var se *stack.Error
			if !errors.As(err, &se) || se.Line != tc.line || se.Key != "functions" || !strings.Contains(err.Error(), "no functions defined") {
				t.Errorf("LoadStack() = %v, want a stack error at line %d: no functions defined", err, tc.line)
			}
			if diff := cmp.Diff(tc.wantWarnings, rec.events); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
		})
	}
}

// TestLoadStackWarnings: the stack file's warnings are events, and the
// functions merged from anchors are complete.
func TestLoadStackWarnings(t *testing.T) {
	writeStack(t, `provider:
  name: openfaas
x-defaults: &defaults
  lang: go
  environment:
    a: b
functions:
  hello:
    <<: *defaults
    handler: ./hello
    image: ghcr.io/me/hello
    enviroment:
      c: d
`)
	p, rec := newProject(t, nil)
	st, err := p.LoadStack(context.Background(), Selection{Tag: "latest", Envsubst: true})
	if err != nil {
		t.Fatal(err)
	}
	if fn := st.Functions["hello"]; fn.Lang != "go" || fn.Environment["a"] != "b" {
		t.Errorf("hello = %+v, want lang and environment from the anchor", fn)
	}
	want := []Event{Warning{Path: "stack.yml", Line: 12, Msg: "functions.hello.enviroment: unknown key, ignored; did you mean environment?"}}
	if diff := cmp.Diff(want, rec.events); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
}
