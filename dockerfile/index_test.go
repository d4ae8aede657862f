package dockerfile

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/kiln-build/kiln/cache"
)

// TestLayerIndexStored indexes a layer once: a later build (new
// layerIndexes on the same store) lists its files and reads the inlined
// /etc/passwd without opening the layer's tar again.
func TestLayerIndexStored(t *testing.T) {
	ctx := context.Background()
	store, err := cache.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	passwd := []byte("root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\n")
	for _, h := range []tar.Header{dir("etc/"), {Name: "etc/passwd", Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(passwd))}, link("bin", "usr/bin")} {
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			tw.Write(passwd)
		}
	}
	tw.Close()
	b := buf.Bytes()
	opens := 0
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		opens++
		return io.NopCloser(bytes.NewReader(b)), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	ids := diffIDs(t, []v1.Layer{l})
	first, err := newLayerIndexes(store).get(ctx, l, ids[0])
	if err != nil {
		t.Fatal(err)
	}
	opens = 0
	fsys := newStageFS(t.TempDir())
	if err := fsys.apply(ctx, newLayerIndexes(store), []v1.Layer{l}, ids); err != nil {
		t.Fatal(err)
	}
	if opens != 0 {
		t.Errorf("a stored index: the layer was opened %d times, want 0", opens)
	}
	if got, ok := fsys.read("etc/passwd"); !ok || !bytes.Equal(got, passwd) {
		t.Errorf("read(etc/passwd) = %q, %v; want the layer's bytes", got, ok)
	}
	second, err := newLayerIndexes(store).get(ctx, l, ids[0])
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(first, second); diff != "" {
		t.Errorf("stored index (-read +loaded):\n%s", diff)
	}
}

// TestFetchReadsOnlyHoldingLayers fetches a file of the upper layer: the
// lower layer's tar is not opened.
func TestFetchReadsOnlyHoldingLayers(t *testing.T) {
	ctx := context.Background()
	opens := map[string]int{}
	counted := func(name string, l v1.Layer) v1.Layer {
		cl, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
			opens[name]++
			return l.Uncompressed()
		})
		if err != nil {
			t.Fatal(err)
		}
		return cl
	}
	ls := []v1.Layer{
		counted("lower", rawLayer(t, dir("usr/"), file("usr/big"), dir("app/"), file("app/old"))),
		counted("upper", rawLayer(t, dir("app/"), file("app/new"))),
	}
	ids := diffIDs(t, ls)
	x := newLayerIndexes(nil)
	if _, err := x.getAll(ctx, ls, ids); err != nil {
		t.Fatal(err)
	}
	clear(opens)
	fsys := newStageFS(t.TempDir())
	if err := fsys.apply(ctx, x, ls, ids); err != nil {
		t.Fatal(err)
	}
	if err := fsys.fetch(ctx, ls, func(p string) bool { return p == "app/new" }); err != nil {
		t.Fatal(err)
	}
	if want := map[string]int{"upper": 1}; !cmp.Equal(want, opens) {
		t.Errorf("layers opened: %v, want %v", opens, want)
	}
	if got, ok := fsys.read("app/new"); !ok || string(got) != "app/new" {
		t.Errorf("read(app/new) = %q, %v", got, ok)
	}
	if _, ok := fsys.read("app/old"); ok {
		t.Errorf("read(app/old): fetched though not wanted")
	}
}
