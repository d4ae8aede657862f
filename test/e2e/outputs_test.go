//go:build e2e

package e2e

import (
	"archive/tar"
	"bytes"
	"debug/elf"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/kiln-build/kiln/test/registrytest"
)

// TestReproducible builds go-hello twice, a second apart, in two empty
// caches and from two folders, and wants the same digest each time;
// SOURCE_DATE_EPOCH changes the digest and the config's creation time.
func TestReproducible(t *testing.T) {
	image := "kiln.local/e2e/repro:v1"
	build := func(dir string, env ...string) (string, time.Time) {
		t.Helper()
		start := time.Now()
		r := mustKiln(t, kilnOpts{cache: t.TempDir(), env: env}, "build", dir, "--lang", "golang-middleware", "--image", image)
		return digestOf(t, r.stdout), start
	}
	d1, start := build(sample(goHello))
	// The runs must not share a second, so a clock that leaked into the
	// image would show.
	if wait := time.Second - time.Since(start); wait > 0 {
		time.Sleep(wait)
	}
	d2, _ := build(sample(goHello))
	if d2 != d1 {
		t.Errorf("second build in another cache: digest = %s, want %s", d2, d1)
	}
	d3, _ := build(copySample(t, goHello))
	if d3 != d1 {
		t.Errorf("build of a copy in another folder: digest = %s, want %s", d3, d1)
	}

	out := filepath.Join(t.TempDir(), "epoch")
	r := mustKiln(t, kilnOpts{cache: warmCache, env: []string{"SOURCE_DATE_EPOCH=1700000000"}}, "build", sample(goHello), "--lang", "golang-middleware", "--image", image, "--output", "oci:"+out)
	if d := digestOf(t, r.stdout); d == d1 {
		t.Errorf("SOURCE_DATE_EPOCH=1700000000: digest = %s, want one different from the epoch-0 build", d)
	}
	cf := layoutImageConfig(t, out)
	if want := time.Unix(1700000000, 0).UTC(); !cf.Created.Time.Equal(want) {
		t.Errorf("SOURCE_DATE_EPOCH=1700000000: config created = %s, want %s", cf.Created.Time, want)
	}
}

// TestTarOutput writes a docker-loadable tarball and reads it with skopeo.
func TestTarOutput(t *testing.T) {
	needBinaries(t, "skopeo")
	file := filepath.Join(t.TempDir(), "hello.tar")
	rep := buildJSON(t, kilnOpts{cache: warmCache}, sample(goHello), "--lang", "golang-middleware", "--image", "kiln.local/e2e/tar:v1", "--output", "tar:"+file)
	if rep.Output != "tar:"+file {
		t.Errorf("kiln build --json output = %q, want %q", rep.Output, "tar:"+file)
	}

	var inspect struct {
		Architecture string
		Os           string
		Layers       []string
		Env          []string
	}
	if err := json.Unmarshal([]byte(tool(t, "skopeo", "inspect", "docker-archive:"+file)), &inspect); err != nil {
		t.Fatal(err)
	}
	if inspect.Architecture != "amd64" || inspect.Os != "linux" {
		t.Errorf("skopeo inspect: platform = %s/%s, want linux/amd64", inspect.Os, inspect.Architecture)
	}
	if len(inspect.Layers) != len(rep.Layers) {
		t.Errorf("skopeo inspect: %d layers, want %d (%v)", len(inspect.Layers), len(rep.Layers), layerNames(rep.Layers))
	}
	if !slices.Contains(inspect.Env, "fprocess=./handler") {
		t.Errorf("skopeo inspect: env = %v, want fprocess=./handler", inspect.Env)
	}

	var cf v1.ConfigFile
	if err := json.Unmarshal([]byte(tool(t, "skopeo", "inspect", "--config", "docker-archive:"+file)), &cf); err != nil {
		t.Fatal(err)
	}
	checkImageConfig(t, &cf, "amd64")
}

// TestDigestFile checks --digest-file against stdout and the registry.
func TestDigestFile(t *testing.T) {
	reg := startRegistry(t)
	file := filepath.Join(t.TempDir(), "digests")
	r := mustKiln(t, kilnOpts{cache: warmCache}, "build", sample(goHello), "--lang", "golang-middleware", "--image", reg.Host+"/e2e/digest:v1", "--push", "--digest-file", file)
	got := string(readFile(t, file))
	if got != r.stdout || len(r.lines()) != 1 {
		t.Errorf("--digest-file holds %q, want stdout's one line %q", got, r.stdout)
	}
	if want := reg.Host + "/e2e/digest@"; !strings.HasPrefix(got, want) {
		t.Errorf("--digest-file holds %q, want %sDIGEST", got, want)
	}
	pushed(t, reg, "e2e/digest", "v1", digestOf(t, strings.TrimSpace(got)))
}

// TestStackFilter builds from a stack file whose handlers are relative to
// the working directory, and --filter picks one function.
func TestStackFilter(t *testing.T) {
	reg := startRegistry(t)
	work := t.TempDir()
	for _, s := range []string{goHello, goDeps} {
		if err := os.Rename(copySample(t, s), filepath.Join(work, s)); err != nil {
			t.Fatal(err)
		}
	}
	stack := `version: 1.0
provider:
  name: openfaas
  gateway: http://127.0.0.1:8080
functions:
  hello:
    lang: golang-middleware
    handler: ./go-hello
    image: ` + reg.Host + `/stack/hello:0.1
  deps:
    lang: golang-middleware
    handler: ./go-deps
    image: ` + reg.Host + `/stack/deps:0.1
`
	writeFile(t, filepath.Join(work, "stack.yml"), []byte(stack))
	o := kilnOpts{cache: warmCache, dir: work}

	mark := reg.Mark()
	r := mustKiln(t, o, "build", "-f", "stack.yml", "--filter", "hello", "--push")
	lines := r.lines()
	if len(lines) != 1 || !strings.HasPrefix(lines[0], reg.Host+"/stack/hello@sha256:") {
		t.Fatalf("kiln build --filter hello printed %q, want one line %s/stack/hello@sha256:...", lines, reg.Host)
	}
	pushed(t, reg, "stack/hello", "0.1", digestOf(t, lines[0]))
	if status, _ := registryStatus(t, reg, "stack/deps", "0.1"); status != http.StatusNotFound {
		t.Errorf("HEAD /v2/stack/deps/manifests/0.1 = %d, want 404 (filtered out)", status)
	}
	reqs := requestsSince(t, reg, mark)
	if puts := registrytest.ManifestPuts(reqs); !slices.Equal(puts, []string{"stack/hello:0.1"}) {
		t.Errorf("manifest puts = %v, want only stack/hello:0.1", puts)
	}
	for _, q := range reqs {
		if repo, d, ok := q.BlobUpload(); ok && repo != "stack/hello" {
			t.Errorf("blob %s uploaded to %s, want only stack/hello", d, repo)
		}
	}

	r = kiln(t, o, "build", "-f", "stack.yml", "--filter", "nomatch", "--push")
	checkOneLineError(t, r, 1, []string{"nomatch"}, false)
}

// TestPlatformArm64 builds for linux/arm64 on an amd64 machine: the config
// says arm64 and both executables in the image are arm64 ELF files.
func TestPlatformArm64(t *testing.T) {
	out := filepath.Join(t.TempDir(), "arm64")
	r := mustKiln(t, kilnOpts{cache: warmCache}, "build", sample(goHello), "--lang", "golang-middleware", "--image", "kiln.local/e2e/arm:v1", "--platform", "linux/arm64", "--output", "oci:"+out)
	digest := digestOf(t, r.stdout)
	img := layoutImage(t, out)
	if d, err := img.Digest(); err != nil || d.String() != digest {
		t.Errorf("layout image digest = %v, %v; want %s", d, err, digest)
	}
	if err := validate.Image(img); err != nil {
		t.Errorf("validate.Image() = %v, want nil", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	checkImageConfig(t, cf, "arm64")
	for path, b := range imageFiles(t, img, "usr/bin/fwatchdog", "home/app/handler") {
		f, err := elf.NewFile(bytes.NewReader(b))
		if err != nil {
			t.Errorf("/%s is not an ELF file: %v", path, err)
			continue
		}
		if f.Machine != elf.EM_AARCH64 {
			t.Errorf("/%s machine = %s, want %s", path, f.Machine, elf.EM_AARCH64)
		}
	}
}

// checkImageConfig checks the image config the contract promises.
func checkImageConfig(t *testing.T, cf *v1.ConfigFile, arch string) {
	t.Helper()
	if cf.OS != "linux" || cf.Architecture != arch {
		t.Errorf("config platform = %s/%s, want linux/%s", cf.OS, cf.Architecture, arch)
	}
	c := cf.Config
	if !slices.Equal(c.Entrypoint, []string{"/usr/bin/fwatchdog"}) {
		t.Errorf("config entrypoint = %q, want [/usr/bin/fwatchdog]", c.Entrypoint)
	}
	if c.User != "65532:65532" {
		t.Errorf("config user = %q, want 65532:65532", c.User)
	}
	if c.WorkingDir != "/home/app" {
		t.Errorf("config workdir = %q, want /home/app", c.WorkingDir)
	}
	if _, ok := c.ExposedPorts["8080/tcp"]; !ok || len(c.ExposedPorts) != 1 {
		t.Errorf("config exposed ports = %v, want 8080/tcp", c.ExposedPorts)
	}
	for _, want := range []string{"fprocess=./handler", "mode=http", "upstream_url=http://127.0.0.1:8082"} {
		if !slices.Contains(c.Env, want) {
			t.Errorf("config env = %q, want it to hold %s", c.Env, want)
		}
	}
}

// layoutImage returns the one image in an OCI layout.
func layoutImage(t *testing.T, dir string) v1.Image {
	t.Helper()
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	m, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Manifests) != 1 {
		t.Fatalf("%s holds %d manifests, want 1", dir, len(m.Manifests))
	}
	img, err := idx.Image(m.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func layoutImageConfig(t *testing.T, dir string) *v1.ConfigFile {
	t.Helper()
	cf, err := layoutImage(t, dir).ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	return cf
}

// imageFiles returns the contents of the given paths in the image's
// flattened filesystem; a missing path fails the test.
func imageFiles(t *testing.T, img v1.Image, paths ...string) map[string][]byte {
	t.Helper()
	rc := mutate.Extract(img)
	defer rc.Close()
	out := map[string][]byte{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		name := strings.TrimPrefix(h.Name, "./")
		if slices.Contains(paths, name) && h.Typeflag == tar.TypeReg {
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			out[name] = b
		}
	}
	for _, p := range paths {
		if _, ok := out[p]; !ok {
			t.Errorf("the image has no regular file /%s", p)
		}
	}
	return out
}
