package layers

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/v1/validate"
)

type entry struct {
	Name     string
	Type     byte
	Mode     int64
	UID, GID int
	Linkname string
	Content  string
	ModTime  int64
}

func readTar(t *testing.T, r io.Reader) []entry {
	t.Helper()
	var out []entry
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("reading tar: %v", err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		if hdr.Uname != "" || hdr.Gname != "" {
			t.Errorf("%s: owner names %q/%q leak host data", hdr.Name, hdr.Uname, hdr.Gname)
		}
		out = append(out, entry{hdr.Name, hdr.Typeflag, hdr.Mode, hdr.Uid, hdr.Gid, hdr.Linkname, string(b), hdr.ModTime.Unix()})
	}
}

func TestWriteTar(t *testing.T) {
	src := filepath.Join(t.TempDir(), "bin")
	if err := os.WriteFile(src, []byte("#!binary"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		files []File
		opts  []Option
		want  []entry
	}{{
		name: "sorted with parents",
		files: []File{
			Bytes("home/app/b.txt", 0o644, []byte("b")),
			HostFile("/home/app/handler", 0o755, src),
			Symlink("usr/bin/fwatchdog", "../../home/app/handler"),
		},
		want: []entry{
			{Name: "home/", Type: tar.TypeDir, Mode: 0o755},
			{Name: "home/app/", Type: tar.TypeDir, Mode: 0o755},
			{Name: "home/app/b.txt", Type: tar.TypeReg, Mode: 0o644, Content: "b"},
			{Name: "home/app/handler", Type: tar.TypeReg, Mode: 0o755, Content: "#!binary"},
			{Name: "usr/", Type: tar.TypeDir, Mode: 0o755},
			{Name: "usr/bin/", Type: tar.TypeDir, Mode: 0o755},
			{Name: "usr/bin/fwatchdog", Type: tar.TypeSymlink, Mode: 0o777, Linkname: "../../home/app/handler"},
		},
	}, {
		name: "listed directory keeps its mode and owner, epoch applied",
		files: []File{
			{Path: "tmp", Mode: fs.ModeDir | fs.ModeSticky | 0o777},
			{Path: "home/app", Mode: fs.ModeDir | 0o755, UID: 65532, GID: 65532},
			Bytes("home/app/x", 0o600, nil),
		},
		opts: []Option{WithEpoch(time.Unix(1700000000, 0))},
		want: []entry{
			{Name: "home/", Type: tar.TypeDir, Mode: 0o755, ModTime: 1700000000},
			{Name: "home/app/", Type: tar.TypeDir, Mode: 0o755, UID: 65532, GID: 65532, ModTime: 1700000000},
			{Name: "home/app/x", Type: tar.TypeReg, Mode: 0o600, ModTime: 1700000000},
			{Name: "tmp/", Type: tar.TypeDir, Mode: 0o1777, ModTime: 1700000000},
		},
	}, {
		name: "tree owner: the folder and all below it, listed or implied",
		files: []File{
			Bytes("home/app/function/handler.py", 0o644, []byte("h")),
			{Path: "home/app/data", Mode: fs.ModeDir | 0o700, UID: 1},
			Bytes("home/apple", 0o644, nil),
			Bytes("usr/bin/x", 0o755, nil),
		},
		opts: []Option{WithTreeOwner("/home/app/", 65532, 65533)},
		want: []entry{
			{Name: "home/", Type: tar.TypeDir, Mode: 0o755},
			{Name: "home/app/", Type: tar.TypeDir, Mode: 0o755, UID: 65532, GID: 65533},
			{Name: "home/app/data/", Type: tar.TypeDir, Mode: 0o700, UID: 65532, GID: 65533},
			{Name: "home/app/function/", Type: tar.TypeDir, Mode: 0o755, UID: 65532, GID: 65533},
			{Name: "home/app/function/handler.py", Type: tar.TypeReg, Mode: 0o644, UID: 65532, GID: 65533, Content: "h"},
			{Name: "home/apple", Type: tar.TypeReg, Mode: 0o644},
			{Name: "usr/", Type: tar.TypeDir, Mode: 0o755},
			{Name: "usr/bin/", Type: tar.TypeDir, Mode: 0o755},
			{Name: "usr/bin/x", Type: tar.TypeReg, Mode: 0o755},
		},
	}, {
		name:  "identical duplicates merge",
		files: []File{Dir("etc", 0o755), Dir("etc", 0o755), Bytes("etc/a", 0o644, []byte("x")), Bytes("etc/a", 0o644, []byte("x"))},
		want: []entry{
			{Name: "etc/", Type: tar.TypeDir, Mode: 0o755},
			{Name: "etc/a", Type: tar.TypeReg, Mode: 0o644, Content: "x"},
		},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := WriteTar(&buf, tc.files, tc.opts...); err != nil {
				t.Fatalf("WriteTar() = %v", err)
			}
			if diff := cmp.Diff(tc.want, readTar(t, &buf)); diff != "" {
				t.Errorf("WriteTar() entries (-want +got):\n%s", diff)
			}
		})
	}
}

func TestWriteTarErrors(t *testing.T) {
	tests := []struct {
		name     string
		files    []File
		conflict bool
	}{
		{"different content for one path", []File{Bytes("a", 0o644, []byte("1")), Bytes("a", 0o644, []byte("2"))}, true},
		{"file used as a directory", []File{Bytes("a", 0o644, nil), Bytes("a/b", 0o644, nil)}, true},
		{"root path", []File{Dir("/", 0o755)}, false},
		{"device", []File{{Path: "dev/null", Mode: fs.ModeDevice | 0o666}}, false},
		{"missing source", []File{HostFile("a", 0o644, "/nonexistent/kiln")}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := WriteTar(io.Discard, tc.files)
			if err == nil {
				t.Fatal("WriteTar() = nil, want an error")
			}
			var ce *ConflictError
			if got := errors.As(err, &ce); got != tc.conflict {
				t.Errorf("WriteTar() = %v; is ConflictError = %v, want %v", err, got, tc.conflict)
			}
		})
	}
}

func TestFromDir(t *testing.T) {
	root := t.TempDir()
	mustWrite(t, filepath.Join(root, "handler.go"), "package function", 0o644)
	mustWrite(t, filepath.Join(root, "run.sh"), "#!/bin/sh", 0o755)
	mustWrite(t, filepath.Join(root, ".git", "HEAD"), "ref", 0o644)
	if err := os.Symlink("/etc/passwd", filepath.Join(root, "outside")); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(root, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	files, err := FromDir(root, "/home/app/", WithSkip(func(rel string, d fs.DirEntry) bool { return rel == ".git" }), WithOwner(1, 2))
	if err != nil {
		t.Fatalf("FromDir() = %v", err)
	}
	var buf bytes.Buffer
	if err := WriteTar(&buf, files); err != nil {
		t.Fatal(err)
	}
	want := []entry{
		{Name: "home/", Type: tar.TypeDir, Mode: 0o755},
		{Name: "home/app/", Type: tar.TypeDir, Mode: 0o755},
		{Name: "home/app/handler.go", Type: tar.TypeReg, Mode: 0o644, UID: 1, GID: 2, Content: "package function"},
		{Name: "home/app/outside", Type: tar.TypeSymlink, Mode: 0o777, UID: 1, GID: 2, Linkname: "/etc/passwd"},
		{Name: "home/app/run.sh", Type: tar.TypeReg, Mode: 0o755, UID: 1, GID: 2, Content: "#!/bin/sh"},
	}
	if diff := cmp.Diff(want, readTar(t, &buf)); diff != "" {
		t.Errorf("FromDir() entries (-want +got):\n%s", diff)
	}
}

func TestCompressAndFileLayer(t *testing.T) {
	files := []File{Bytes("a/b", 0o644, bytes.Repeat([]byte("kiln"), 1<<14))}
	path := filepath.Join(t.TempDir(), "layer.tar.gz")
	out, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	desc, err := Compress(out, func(w io.Writer) error { return WriteTar(w, files) })
	if err != nil {
		t.Fatalf("Compress() = %v", err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	blob, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(blob)
	if got, want := desc.Digest.Hex, hex.EncodeToString(sum[:]); got != want {
		t.Errorf("Compress() digest = %s, want %s", got, want)
	}
	if desc.Size != int64(len(blob)) {
		t.Errorf("Compress() size = %d, want %d", desc.Size, len(blob))
	}
	// validate.Layer recomputes digest, diffID and size from the bytes.
	if err := validate.Layer(FromCompressedFile(path, desc)); err != nil {
		t.Errorf("validate.Layer() = %v", err)
	}
}

func TestDeterministic(t *testing.T) {
	dir := t.TempDir()
	mustWrite(t, filepath.Join(dir, "x"), "same", 0o644)
	build := func() Descriptor {
		// Touching the file changes host metadata, which must not reach the layer.
		now := time.Now()
		os.Chtimes(filepath.Join(dir, "x"), now, now)
		files, err := FromDir(dir, "app")
		if err != nil {
			t.Fatal(err)
		}
		d, err := Compress(io.Discard, func(w io.Writer) error { return WriteTar(w, files) })
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	first := build()
	time.Sleep(10 * time.Millisecond)
	if second := build(); second != first {
		t.Errorf("second build = %+v, want %+v", second, first)
	}
}

func TestKey(t *testing.T) {
	dir := t.TempDir()
	mustWrite(t, filepath.Join(dir, "f"), "v1", 0o644)
	key := func(files []File) string {
		s := FilesStep("test", files)
		h, err := s.Key(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return h.String()
	}
	base := key([]File{HostFile("f", 0o644, filepath.Join(dir, "f"))})
	changes := map[string][]File{
		"mode":    {HostFile("f", 0o755, filepath.Join(dir, "f"))},
		"path":    {HostFile("g", 0o644, filepath.Join(dir, "f"))},
		"content": {Bytes("f", 0o644, []byte("v2"))},
		"owner":   {{Path: "f", Mode: 0o644, Source: filepath.Join(dir, "f"), UID: 1}},
	}
	for name, files := range changes {
		if got := key(files); got == base {
			t.Errorf("key with a different %s = %s, want a different key", name, got)
		}
	}
	epochKey, err := FilesStep("test", []File{HostFile("f", 0o644, filepath.Join(dir, "f"))}, WithEpoch(time.Unix(1, 0))).Key(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if epochKey.String() == base {
		t.Errorf("key with another epoch = %s, want a different key", epochKey)
	}
	ownerKey, err := FilesStep("test", []File{HostFile("f", 0o644, filepath.Join(dir, "f"))}, WithTreeOwner("f", 1, 1)).Key(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if ownerKey.String() == base {
		t.Errorf("key with a tree owner = %s, want a different key", ownerKey)
	}
	if got := key([]File{Bytes("f", 0o644, []byte("v1"))}); got != base {
		t.Errorf("key of the same content given inline = %s, want %s", got, base)
	}
	if a, b := NewKey("k").Strings("ab", "c").Sum(), NewKey("k").Strings("a", "bc").Sum(); a == b {
		t.Errorf("Strings(ab, c) and Strings(a, bc) both = %s, want different keys", a)
	}
}

func mustWrite(t *testing.T, path, content string, mode fs.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

// TestLazyFilesStep: the key and bytes of a lazy step are those of the
// FilesStep of the same files, no files is no layer, and the list's error
// is the key's.
func TestLazyFilesStep(t *testing.T) {
	ctx := context.Background()
	files := []File{Bytes("a", 0o644, []byte("x")), Bytes("b/c", 0o600, []byte("y"))}
	opts := []Option{WithEpoch(time.Unix(7, 0))}
	tests := []struct {
		name    string
		files   []File
		err     error
		wantErr error
	}{
		{"files", files, nil, nil},
		{"none", nil, nil, ErrNoLayer},
		{"list fails", nil, fs.ErrNotExist, fs.ErrNotExist},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			lazy := LazyFilesStep("lazy", func(context.Context) ([]File, error) { return tc.files, tc.err }, opts...)
			got, err := lazy.Key(ctx)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Key() = %v, want %v", err, tc.wantErr)
			}
			if err != nil {
				return
			}
			want, _ := FilesStep("eager", files, opts...).Key(ctx)
			if got != want {
				t.Errorf("Key() = %s, want the FilesStep's %s", got, want)
			}
			var lb, fb bytes.Buffer
			if err := lazy.Build(ctx, &lb); err != nil {
				t.Fatal(err)
			}
			FilesStep("eager", files, opts...).Build(ctx, &fb)
			if !bytes.Equal(lb.Bytes(), fb.Bytes()) {
				t.Errorf("Build() bytes differ from the FilesStep's")
			}
		})
	}
}

// TestHeaderSize checks the header of files of 8 GiB and more, which USTAR
// cannot encode, without writing their bytes.
func TestHeaderSize(t *testing.T) {
	tests := []struct {
		name string
		size int64
		want tar.Format
	}{
		{"empty", 0, tar.FormatUSTAR},
		{"largest USTAR size", 1<<33 - 1, tar.FormatUSTAR},
		{"8 GiB", 1 << 33, tar.FormatPAX},
		{"1 TiB", 1 << 40, tar.FormatPAX},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			hdr := header(HostFile("home/app/big", 0o644, "big"), tc.size, time.Unix(0, 0))
			if hdr.Format != tc.want {
				t.Errorf("header().Format = %v, want %v", hdr.Format, tc.want)
			}
			var buf bytes.Buffer
			if err := tar.NewWriter(&buf).WriteHeader(hdr); err != nil {
				t.Fatalf("WriteHeader() = %v, want nil", err)
			}
			got, err := tar.NewReader(&buf).Next()
			if err != nil {
				t.Fatalf("reading the header back: %v", err)
			}
			if got.Size != tc.size {
				t.Errorf("Size read back = %d, want %d", got.Size, tc.size)
			}
		})
	}
}

// TestWriteTarSparse writes a sparse host file of 8 GiB through WriteTar,
// reading only its header back.
func TestWriteTarSparse(t *testing.T) {
	if testing.Short() {
		t.Skip("reads 8 GiB of a sparse file")
	}
	src := filepath.Join(t.TempDir(), "big")
	f, err := os.Create(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(1 << 33); err != nil {
		f.Close()
		t.Skipf("no sparse file here: %v", err)
	}
	f.Close()
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(WriteTar(pw, []File{HostFile("big", 0o644, src)})) }()
	hdr, err := tar.NewReader(pr).Next()
	pr.Close()
	if err != nil {
		t.Fatalf("WriteTar() of an 8 GiB file: %v", err)
	}
	if hdr.Size != 1<<33 {
		t.Errorf("Size = %d, want %d", hdr.Size, int64(1<<33))
	}
}
