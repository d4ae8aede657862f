package job

import (
	"bytes"
	"context"
	"io"
	"log"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	batchv1 "k8s.io/api/batch/v1"
	"sigs.k8s.io/yaml"

	"github.com/kiln-build/kiln/buildcontext"
	"github.com/kiln-build/kiln/project"
)

// TestStackRender renders the Jobs of a stack with a language function
// (with a configuration.copy path) and a Dockerfile one: the contexts are
// pushed where the Jobs say, and hold what the executor needs.
func TestStackRender(t *testing.T) {
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	u, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	reg := u.Host
	dir := t.TempDir()
	t.Chdir(dir)
	files := map[string]string{
		"stack.yml": `version: 1.0
provider:
  name: openfaas
configuration:
  copy:
    - ./common
functions:
  hello:
    lang: golang-middleware
    handler: ./hello
    image: ` + reg + `/team/hello:0.1
    build_args:
      GO111MODULE: "on"
  web:
    lang: dockerfile
    handler: ./web
    image: ` + reg + `/team/web:latest
`,
		"hello/handler.go":  "package function\n",
		"hello/go.mod":      "module handler/function\n\ngo 1.26\n",
		"hello/.npmrc":      "//registry.npmjs.org/:_authToken=secret\n",
		"common/shared.txt": "shared\n",
		"web/Dockerfile":    "FROM scratch\nCOPY index.html /\n",
		"web/index.html":    "<p>hi</p>\n",
		"web/.dockerignore": "notes.md\n",
		"web/notes.md":      "left out\n",
	}
	for p, body := range files {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p, err := project.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	st, err := p.LoadStack(ctx, project.Selection{File: "stack.yml", Tag: "latest"})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	results, err := Stack(ctx, p, st, project.BuildSettings{BuildArgs: map[string]string{}}, sampleSettings(), Options{Render: &out})
	if err != nil || results != nil {
		t.Fatalf("Stack() = %v, %v, want no result and no error", results, err)
	}
	docs := strings.Split(out.String(), "---\n")
	if len(docs) != 2 {
		t.Fatalf("Stack() rendered %d documents, want 2:\n%s", len(docs), out.String())
	}
	for i, tc := range []struct {
		fn, image, lang string
		want, absent    []string
	}{
		{"hello", reg + "/team/hello:0.1", "--lang=golang-middleware", []string{"handler.go", "go.mod", "common/shared.txt"}, []string{".npmrc"}},
		{"web", reg + "/team/web:latest", "", []string{"Dockerfile", "index.html"}, []string{"notes.md"}},
	} {
		var j batchv1.Job
		if err := yaml.UnmarshalStrict([]byte(docs[i]), &j); err != nil {
			t.Fatal(err)
		}
		args := j.Spec.Template.Spec.Containers[0].Args
		ctxArg, _ := strings.CutPrefix(args[0], "--context=oci://")
		d, err := name.NewDigest(ctxArg)
		if err != nil {
			t.Fatalf("%s: the context %q is not by digest: %v", tc.fn, args[0], err)
		}
		if want := reg + "/team/" + tc.fn + "@"; !strings.HasPrefix(d.String(), want) || j.Name != "kiln-"+tc.fn+"-"+d.DigestStr()[7:17] {
			t.Errorf("%s: context %s, Job %s, want it in %s, named after it", tc.fn, d, j.Name, want)
		}
		if args[1] != "--destination="+tc.image {
			t.Errorf("%s: %s, want --destination=%s", tc.fn, args[1], tc.image)
		}
		if hasLang := strings.Contains(strings.Join(args, " "), "--lang="); hasLang != (tc.lang != "") || tc.lang != "" && !strings.Contains(strings.Join(args, " "), tc.lang) {
			t.Errorf("%s: args %q, want lang %q", tc.fn, args, tc.lang)
		}
		// The tag the context was pushed under names the same digest.
		tagged, err := name.ParseReference(reg + "/team/" + tc.fn + ":context-" + d.DigestStr()[7:19])
		if err != nil {
			t.Fatal(err)
		}
		dst := t.TempDir()
		if err := buildcontext.Fetch(ctx, tagged, dst); err != nil {
			t.Fatalf("%s: fetching its context by tag: %v", tc.fn, err)
		}
		for _, f := range tc.want {
			if _, err := os.Stat(filepath.Join(dst, f)); err != nil {
				t.Errorf("%s: the context lacks %s", tc.fn, f)
			}
		}
		for _, f := range tc.absent {
			if _, err := os.Stat(filepath.Join(dst, f)); err == nil {
				t.Errorf("%s: the context holds %s", tc.fn, f)
			}
		}
	}
	if !strings.Contains(docs[0], "--build-arg=GO111MODULE=on") {
		t.Errorf("the stack's build_args are not the executor's:\n%s", docs[0])
	}
}

// recordingDeployer keeps what it was asked to deploy.
type recordingDeployer struct {
	names  []string
	images map[string]project.Image
}

func (d *recordingDeployer) Deploy(ctx context.Context, names []string, images map[string]project.Image) error {
	d.names, d.images = names, images
	return nil
}

// TestDeployByDigest: --deploy sends the digest the Job reported, read
// back from the registry with the image's fprocess; a tag another push
// moved meanwhile is refused rather than deployed.
func TestDeployByDigest(t *testing.T) {
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	u, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Chdir(t.TempDir())
	image := u.Host + "/team/hello:0.1"
	stack := "version: 1.0\nprovider:\n  name: openfaas\nfunctions:\n  hello:\n    lang: dockerfile\n    handler: ./hello\n    image: " + image + "\n"
	if err := os.WriteFile("stack.yml", []byte(stack), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir("hello", 0o755); err != nil {
		t.Fatal(err)
	}
	img, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	img, err = mutate.Config(img, v1.Config{Env: []string{"fprocess=./handler"}})
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(image)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	p, err := project.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	st, err := p.LoadStack(ctx, project.Selection{File: "stack.yml", Tag: "latest"})
	if err != nil {
		t.Fatal(err)
	}
	want := u.Host + "/team/hello@" + d.String()
	var rec recordingDeployer
	results := []Result{{Name: "hello", Image: want, Digest: d.String()}}
	if err := deployByDigest(ctx, p, st, project.BuildSettings{}, &rec, results); err != nil {
		t.Fatalf("deploy() = %v", err)
	}
	if got := rec.images["hello"]; got.Ref != want || got.FProcess != "./handler" || len(rec.names) != 1 {
		t.Errorf("deployed %v %+v, want hello as %s with fprocess ./handler", rec.names, got, want)
	}
	moved := []Result{{Name: "hello", Image: u.Host + "/team/hello@sha256:" + strings.Repeat("0", 64), Digest: "sha256:" + strings.Repeat("0", 64)}}
	if err := deployByDigest(ctx, p, st, project.BuildSettings{}, &recordingDeployer{}, moved); err == nil || !strings.Contains(err.Error(), "another push moved it") {
		t.Errorf("deploy(a moved tag) = %v, want a refusal", err)
	}
}
