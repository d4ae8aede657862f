package java

import (
	"archive/tar"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kiln-build/kiln/languages"
	"github.com/kiln-build/kiln/languages/packtest"
	"github.com/kiln-build/kiln/test/debianrepo"
)

// password stands for a repository credential a handler's settings.xml
// holds: it must reach no layer and no file of kiln's cache.
const password = "s3cret-maven-password"

// handlerSettings is a settings.xml that mirrors everything to Debian's
// Maven repository at url, with a server's credentials.
func handlerSettings(url string) string {
	return `<settings>
  <mirrors>
    <mirror><id>debian</id><mirrorOf>*</mirrorOf><url>` + url + `</url></mirror>
  </mirrors>
  <servers>
    <server><id>debian</id><username>kiln</username><password>` + password + `</password></server>
  </servers>
</settings>
`
}

// TestHandlerSettings builds the Maven sample with a settings.xml in its
// folder, and one in the user's home whose mirror does not exist: Maven
// resolves through the handler's mirror (mvn -s), the settings reach no
// layer and, in clear, no file of kiln's cache, and another mirror URL
// resolves again. TestGolden builds with the user's settings.xml alone.
func TestHandlerSettings(t *testing.T) {
	needJDK(t)
	if _, err := exec.LookPath("mvn"); err != nil {
		t.Skip("no mvn on PATH")
	}
	if missing := debianrepo.Missing(); missing != "" {
		t.Skip(missing)
	}
	src, err := filepath.Abs(filepath.Join("..", "..", "testdata", "functions", "java-maven-app"))
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "fn")
	if err := os.CopyFS(dir, os.DirFS(src)); err != nil {
		t.Fatal(err)
	}
	settings := filepath.Join(dir, "settings.xml")
	if err := os.WriteFile(settings, []byte(handlerSettings("file://"+debianrepo.Dir)), 0o600); err != nil {
		t.Fatal(err)
	}
	// The user's settings.xml mirrors everything to a repository that is
	// not there: the handler's takes its place, as mvn -s does.
	home := t.TempDir()
	if err := os.MkdirAll(filepath.Join(home, ".m2"), 0o755); err != nil {
		t.Fatal(err)
	}
	// Inside the test's folders: Maven makes the folder of a file://
	// repository it fails to read from.
	missing := filepath.Join(t.TempDir(), "no-such-repo")
	if err := os.WriteFile(filepath.Join(home, ".m2", "settings.xml"), []byte(handlerSettings("file://"+missing)), 0o644); err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), "MAVEN_OPTS=-Duser.home="+home)
	cacheDir := t.TempDir()
	p := newPack(t, WithEnv(env), WithCacheDir(filepath.Join(cacheDir, "java")))
	b := packtest.NewBuilder(t, p)
	fn := languages.Function{Name: "fn", Dir: dir, Lang: LangJava, Platform: packtest.Platform, Epoch: packtest.Epoch}
	res, err := b.Build(context.Background(), fn)
	if err != nil {
		t.Fatalf("Build() = %v", err)
	}
	ls, err := res.Image.Layers()
	if err != nil {
		t.Fatal(err)
	}
	var jars bool
	for i, l := range ls {
		for name, content := range layerFiles(t, l) {
			if strings.HasSuffix(name, "settings.xml") || strings.Contains(content, password) {
				t.Errorf("layer %q holds %s, or the password", res.Layers[i].Name, name)
			}
			jars = jars || strings.HasSuffix(name, "/lib/commons-lang3-3.12.0.jar")
		}
	}
	if !jars {
		t.Errorf("no layer holds commons-lang3: Maven did not resolve through the handler's settings.xml")
	}
	noPassword(t, cacheDir)

	depsKey := func() string {
		t.Helper()
		plan, err := planAndFinish(p, languages.Function{Name: "fn", Dir: dir, Lang: LangJava, Platform: packtest.Platform, Epoch: packtest.Epoch, ScratchDir: t.TempDir()})
		if err != nil {
			t.Fatalf("Plan() = %v", err)
		}
		for _, s := range plan.Steps {
			if r, ok := s.(*runtimeStep); ok {
				d, err := r.b.deps.Get(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				return d.key
			}
		}
		t.Fatal("no runtime step")
		return ""
	}
	before := depsKey()
	if err := os.WriteFile(settings, []byte(handlerSettings("file://"+debianrepo.Dir+"/")), 0o600); err != nil {
		t.Fatal(err)
	}
	after := depsKey()
	if after == before {
		t.Errorf("dependencies key after a new mirror URL = the same, want another resolution")
	}
	if !anyDir(t, cacheDir, after) {
		t.Errorf("no resolution cached under the new key %s", after)
	}
	noPassword(t, cacheDir)
}

// TestSettingsLinkedOut: a settings.xml that leads out of the handler
// folder is refused at Plan, before Maven could read it.
func TestSettingsLinkedOut(t *testing.T) {
	needJDK(t)
	dir := handlerDir(t, "        return null;")
	if err := os.Symlink("/etc/shadow", filepath.Join(dir, "settings.xml")); err != nil {
		t.Fatal(err)
	}
	_, err := newPack(t, WithEnv(os.Environ())).Plan(context.Background(), languages.Function{Dir: dir, Lang: LangJava11, Platform: packtest.Platform, ScratchDir: t.TempDir()})
	var se *languages.SourceError
	if !errors.As(err, &se) || se.Path != filepath.Join(dir, "settings.xml") {
		t.Errorf("Plan() = %v, want a SourceError on settings.xml", err)
	}
}

// noPassword fails the test if a file under dir holds the password.
func noPassword(t *testing.T, dir string) {
	t.Helper()
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		if b, err := os.ReadFile(p); err == nil && strings.Contains(string(b), password) {
			t.Errorf("%s holds the settings' password", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// anyDir reports whether a folder named name is under root.
func anyDir(t *testing.T, root, name string) bool {
	t.Helper()
	found := false
	_ = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() && d.Name() == name {
			found = true
			return filepath.SkipAll
		}
		return err
	})
	return found
}

// layerFiles returns a layer's regular files by name, with their content.
func layerFiles(t *testing.T, l v1.Layer) map[string]string {
	t.Helper()
	rc, err := l.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	out := map[string]string{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		out[h.Name] = string(b)
	}
}
