package project

import (
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	ggcrremote "github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/kiln-build/kiln/internal/usage"
	"github.com/kiln-build/kiln/languages"
)

func TestIsOpenFaaSWatchdog(t *testing.T) {
	tests := []struct {
		ref  string
		want bool
	}{
		{"ghcr.io/openfaas/of-watchdog:0.10.7", true},
		{"ghcr.io/openfaas/classic-watchdog:0.3.3", true},
		{"openfaas/of-watchdog:0.9.6", true},
		{"docker.io/openfaas/classic-watchdog@sha256:" + "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", true},
		{"ghcr.io/openfaas/of-watchdog", true},
		{"ghcr.io/openfaas/faas-netes:0.18", false},
		{"ghcr.io/someone/of-watchdog:0.10.7", false},
		{"example.com/openfaas/of-watchdog:1", false},
		{"debian:bookworm", false},
		{"not a reference", false},
	}
	for _, tc := range tests {
		if got := isOpenFaaSWatchdog(tc.ref); got != tc.want {
			t.Errorf("isOpenFaaSWatchdog(%q) = %v, want %v", tc.ref, got, tc.want)
		}
	}
}

// TestViaDockerfile: which functions the Dockerfile engine builds, from
// which template, and the notice for a template kiln's pack leaves aside.
func TestViaDockerfile(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"template/ruby/Dockerfile", "template/go/Dockerfile", "template/empty/template.yml"} {
		p := filepath.Join(dir, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("FROM scratch\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Chdir(dir)
	builtIn := []string{"go", "node20"}
	tests := []struct {
		lang, tmpl string
		templates  bool
		want       bool
	}{
		{"dockerfile", "", false, true},
		{"ruby", "template/ruby", false, true},
		{"go", "", false, false},
		{"go", "template/go", true, true},
		{"node20", "", true, false},
		{"empty", "", false, false},
		{"cobol", "", false, false},
	}
	var warnings []string
	p := &Project{opts: options{progress: func(e Event) {
		if w, ok := e.(Warning); ok {
			warnings = append(warnings, w.Msg)
		}
	}}}
	for _, tc := range tests {
		p.opts.templates = tc.templates
		tmpl, ok := p.viaDockerfile(languages.Function{Lang: tc.lang}, builtIn)
		want := ""
		if tc.tmpl != "" {
			want = filepath.Join(dir, tc.tmpl)
		}
		if tmpl != want || ok != tc.want {
			t.Errorf("viaDockerfile(%s, templates %v) = %q, %v, want %q, %v", tc.lang, tc.templates, tmpl, ok, want, tc.want)
		}
	}
	p.opts.templates = false
	p.viaDockerfile(languages.Function{Lang: "go"}, builtIn)
	want := []string{"lang go: built with kiln's own go pack, not ./template/go/Dockerfile (--use-template builds through the template)"}
	if diff := cmp.Diff(want, warnings); diff != "" {
		t.Errorf("warnings (-want +got):\n%s", diff)
	}
}

// TestDockerfileContext: the build context as faas-cli lays out
// ./build/<fn>.
func TestDockerfileContext(t *testing.T) {
	dir := t.TempDir()
	for f, content := range map[string]string{
		"template/ruby/Dockerfile":    "FROM scratch\n",
		"template/ruby/template.yml":  "language: ruby\n",
		"fn/handler.rb":               "puts 1\n",
		"fn/build/old":                "faas-cli's, left out\n",
		"shared/lib.rb":               "lib\n",
		"plain/Dockerfile":            "FROM scratch\n",
		"plain/app.txt":               "app\n",
		"nodockerfile/only-a-file.md": "x\n",
	} {
		p := filepath.Join(dir, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Chdir(dir)
	tests := []struct {
		name    string
		t       Target
		tmpl    string
		want    []string // files of the context
		inPlace bool     // the handler folder itself
		wantErr bool
	}{
		{name: "template", t: Target{Function: languages.Function{Dir: filepath.Join(dir, "fn"), Lang: "ruby"}, Copies: []string{"shared"}}, tmpl: filepath.Join(dir, "template/ruby"),
			want: []string{"Dockerfile", "function/handler.rb", "function/shared/lib.rb", "template.yml"}},
		{name: "dockerfile, no copies", t: Target{Function: languages.Function{Dir: filepath.Join(dir, "plain"), Lang: "dockerfile"}}, inPlace: true},
		{name: "dockerfile with copies", t: Target{Function: languages.Function{Dir: filepath.Join(dir, "plain"), Lang: "dockerfile"}, Copies: []string{"shared"}},
			want: []string{"Dockerfile", "app.txt", "shared/lib.rb"}},
		{name: "dockerfile without one", t: Target{Function: languages.Function{Dir: filepath.Join(dir, "nodockerfile"), Lang: "dockerfile"}}, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			scratch := t.TempDir()
			got, err := dockerfileContext(tc.t, tc.tmpl, scratch)
			if (err != nil) != tc.wantErr {
				t.Fatalf("dockerfileContext() = %v, want error %v", err, tc.wantErr)
			}
			if err != nil {
				return
			}
			if tc.inPlace {
				if got != tc.t.Function.Dir {
					t.Errorf("dockerfileContext() = %s, want the handler folder %s", got, tc.t.Function.Dir)
				}
				return
			}
			var files []string
			filepath.WalkDir(got, func(p string, d os.DirEntry, err error) error {
				if err == nil && !d.IsDir() {
					rel, _ := filepath.Rel(got, p)
					files = append(files, filepath.ToSlash(rel))
				}
				return err
			})
			slices.Sort(files)
			if diff := cmp.Diff(tc.want, files); diff != "" {
				t.Errorf("context files (-want +got):\n%s", diff)
			}
		})
	}
}

func TestMirrored(t *testing.T) {
	const d = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	mirrors := []string{"mirror.example:5000", "proxy.example/hub"}
	tests := []struct {
		ref  string
		want []string
	}{
		{"debian:bookworm", []string{"mirror.example:5000/library/debian:bookworm", "proxy.example/hub/library/debian:bookworm"}},
		{"openfaas/of-watchdog@" + d, []string{"mirror.example:5000/openfaas/of-watchdog@" + d, "proxy.example/hub/openfaas/of-watchdog@" + d}},
		{"docker.io/library/alpine", []string{"mirror.example:5000/library/alpine:latest", "proxy.example/hub/library/alpine:latest"}},
		{"ghcr.io/openfaas/of-watchdog:0.10.7", nil},
		{"127.0.0.1:5000/debian:bookworm", nil},
	}
	for _, tc := range tests {
		if diff := cmp.Diff(tc.want, mirrored(tc.ref, mirrors)); diff != "" {
			t.Errorf("mirrored(%q) (-want +got):\n%s", tc.ref, diff)
		}
	}
}

// TestResolveFromMirror: a Docker Hub name FROM names comes from the
// mirror, with no request to Docker Hub.
func TestResolveFromMirror(t *testing.T) {
	// Should the mirror be skipped, Docker Hub is asked through a proxy
	// on a closed loopback port, never on the network.
	t.Setenv("HTTPS_PROXY", "http://127.0.0.1:1")
	t.Setenv("HTTP_PROXY", "http://127.0.0.1:1")
	srv := httptest.NewServer(registry.New())
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	img, err := random.Image(256, 2)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(host + "/library/debian:bookworm")
	if err != nil {
		t.Fatal(err)
	}
	if err := ggcrremote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	p, _ := newProject(t, nil, WithRegistryMirrors([]string{host}))
	got, err := (&dockerfileBases{p: p}).Resolve(context.Background(), "debian:bookworm", v1.Platform{OS: "linux", Architecture: runtime.GOARCH})
	if err != nil {
		t.Fatalf("Resolve() = %v", err)
	}
	want, _ := img.Digest()
	if d, err := got.Digest(); err != nil || d != want {
		t.Errorf("Resolve() digest = %v, %v; want the mirror's %v", d, err, want)
	}
}

func TestRegistryMirrorsRefused(t *testing.T) {
	for _, m := range []string{"", "https://mirror.example", "mirror.example/", "bad host"} {
		if _, err := New(t.TempDir(), WithRegistryMirrors([]string{m})); !usage.Is(err) {
			t.Errorf("WithRegistryMirrors(%q) = %v, want a usage error", m, err)
		}
	}
}

// TestTemplateBuildOutside: a build through a template reports the
// template folder among what it read, so kiln dev watches it.
func TestTemplateBuildOutside(t *testing.T) {
	dir := t.TempDir()
	for f, content := range map[string]string{
		"template/text/Dockerfile": "FROM scratch\nCOPY function/ /home/app/\n",
		"fn/hello.txt":             "hello\n",
	} {
		p := filepath.Join(dir, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Chdir(dir)
	p, _ := newProject(t, nil)
	ref, err := name.ParseReference("kiln.local/text:1")
	if err != nil {
		t.Fatal(err)
	}
	fn := languages.Function{Name: "text", Dir: filepath.Join(dir, "fn"), Lang: "text", Platform: v1.Platform{OS: "linux", Architecture: runtime.GOARCH}}
	res, err := p.BuildOne(context.Background(), Target{Function: fn, Ref: ref, Image: "kiln.local/text:1"}, p.LocalStore())
	if err != nil {
		t.Fatalf("BuildOne() = %v", err)
	}
	if want := []string{filepath.Join(dir, "template", "text")}; !slices.Equal(res.Outside, want) {
		t.Errorf("BuildOne() read outside %v, want %v", res.Outside, want)
	}
	if res.Digest == "" {
		t.Error("BuildOne() gave no digest")
	}
}
