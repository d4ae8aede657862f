package dockerfile

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// rawLayer writes headers as they are, whiteouts and hard links included.
func rawLayer(t *testing.T, hdrs ...tar.Header) v1.Layer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range hdrs {
		// A regular file holds its own name.
		var body []byte
		if h.Typeflag == tar.TypeReg {
			body = []byte(h.Name)
			h.Size = int64(len(body))
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func diffIDs(t *testing.T, ls []v1.Layer) []v1.Hash {
	t.Helper()
	var out []v1.Hash
	for _, l := range ls {
		d, err := l.DiffID()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, d)
	}
	return out
}

func dir(name string) tar.Header  { return tar.Header{Name: name, Typeflag: tar.TypeDir, Mode: 0o755} }
func file(name string) tar.Header { return tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644} }
func link(name, target string) tar.Header {
	return tar.Header{Name: name, Typeflag: tar.TypeSymlink, Linkname: target, Mode: 0o777}
}

func TestStageFS(t *testing.T) {
	lower := rawLayer(t,
		dir("etc/"), file("etc/a"), file("etc/b"),
		dir("opt/"), dir("opt/old/"), file("opt/old/x"), file("opt/keep"),
		dir("usr/"), dir("usr/lib/"), file("usr/lib/real"), link("lib", "usr/lib"),
		link("abs", "/usr/lib/real"), link("loop1", "loop2"), link("loop2", "loop1"),
	)
	upper := rawLayer(t,
		file("etc/.wh.a"),
		dir("opt/"), file("opt/.wh..wh..opq"), file("opt/new"),
		tar.Header{Name: "etc/hard", Typeflag: tar.TypeLink, Linkname: "etc/b"},
	)
	ls := []v1.Layer{lower, upper}
	fsys := newStageFS(t.TempDir())
	if err := fsys.apply(context.Background(), newLayerIndexes(nil), ls, diffIDs(t, ls)); err != nil {
		t.Fatal(err)
	}
	var paths []string
	for p := range fsys.entries {
		paths = append(paths, p)
	}
	slices.Sort(paths)
	want := []string{"abs", "etc", "etc/b", "etc/hard", "lib", "loop1", "loop2", "opt", "opt/new", "usr", "usr/lib", "usr/lib/real"}
	if diff := cmp.Diff(want, paths); diff != "" {
		t.Errorf("entries after whiteouts (-want +got):\n%s", diff)
	}
	if _, ok := fsys.read("etc/hard"); ok {
		t.Errorf("read(etc/hard) before fetch: the index holds only headers")
	}
	if err := fsys.fetch(context.Background(), ls, func(p string) bool { return p == "etc/hard" }); err != nil {
		t.Fatal(err)
	}
	if b, ok := fsys.read("etc/hard"); !ok || string(b) != "etc/b" {
		t.Errorf("read(etc/hard) = %q, %v; want the content of etc/b", b, ok)
	}

	tests := []struct {
		path    string
		follow  bool
		want    string
		wantErr bool
	}{
		{path: "/lib/real", want: "usr/lib/real"},
		{path: "lib", follow: false, want: "lib"},
		{path: "lib", follow: true, want: "usr/lib"},
		{path: "/abs", follow: true, want: "usr/lib/real"},
		{path: "/usr/lib/../../etc/b", want: "etc/b"},
		{path: "/missing/file", want: "missing/file"},
		{path: "/loop1", follow: true, wantErr: true},
	}
	for _, tc := range tests {
		got, err := fsys.resolve(tc.path, tc.follow)
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("resolve(%q, %v) = %q, %v; want %q, error %v", tc.path, tc.follow, got, err, tc.want, tc.wantErr)
		}
	}
}
