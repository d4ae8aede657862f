package publish

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/validate"
)

// TestLayoutConcurrent publishes 40 images under 8 names from 8 writers at
// once, each with its own Layout as separate processes would have: every
// image that was published last under its name is the one named, and
// index.json stays whole.
func TestLayoutConcurrent(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "images")
	const writers, rounds = 8, 5
	base, err := random.Image(64<<10, 2)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, writers*rounds)
	last := make([]v1.Hash, writers)
	for w := range writers {
		wg.Go(func() {
			ref, _ := name.ParseReference(fmt.Sprintf("example.com/fn%d:1", w))
			for r := range rounds {
				img := base
				if r%2 == 1 { // half of the pushes share every blob with others
					img, _ = random.Image(1024, 1)
				}
				d, err := NewLayout(dir).Publish(ctx, img, ref)
				if err != nil {
					errs <- err
					return
				}
				if last[w], err = v1.NewHash(d.DigestStr()); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("Publish() = %v", err)
	}
	for w := range writers {
		ref, _ := name.ParseReference(fmt.Sprintf("example.com/fn%d:1", w))
		img, err := NewLayout(dir).Lookup(ref)
		if err != nil {
			t.Fatalf("Lookup(%s) = %v", ref, err)
		}
		if d, _ := img.Digest(); d != last[w] {
			t.Errorf("Lookup(%s) = %s, want the last published %s", ref, d, last[w])
		}
		if err := validate.Image(img); err != nil {
			t.Errorf("validate.Image(%s) = %v", ref, err)
		}
	}
	p, err := layout.FromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := p.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	if m, err := idx.IndexManifest(); err != nil || len(m.Manifests) != writers {
		t.Errorf("index.json = %v entries, %v; want %d", m, err, writers)
	}
}

// TestLayoutDamagedIndex truncates index.json: lookups and the next publish
// rebuild it from the name records.
func TestLayoutDamagedIndex(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	one, _ := name.ParseReference("example.com/one:1")
	two, _ := name.ParseReference("example.com/two:1")
	img1, _ := random.Image(256, 1)
	img2, _ := random.Image(256, 1)
	l := NewLayout(dir)
	for ref, img := range map[name.Reference]v1.Image{one: img1, two: img2} {
		if _, err := l.Publish(ctx, img, ref); err != nil {
			t.Fatal(err)
		}
	}
	index := filepath.Join(dir, "index.json")
	b, err := os.ReadFile(index)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(index, b[:len(b)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	if got, err := l.Lookup(one); err != nil || mustDigest(t, got) != mustDigest(t, img1) {
		t.Errorf("Lookup(one) after damage = %v, want %s", err, mustDigest(t, img1))
	}
	img3, _ := random.Image(256, 1)
	if _, err := l.Publish(ctx, img3, one); err != nil {
		t.Fatalf("Publish() after damage = %v", err)
	}
	p, err := layout.FromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := p.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	m, err := idx.IndexManifest()
	if err != nil {
		t.Fatalf("index.json after a publish: %v", err)
	}
	got := map[string]v1.Hash{}
	for _, d := range m.Manifests {
		got[d.Annotations[RefNameAnnotation]] = d.Digest
	}
	if got[one.Name()] != mustDigest(t, img3) || got[two.Name()] != mustDigest(t, img2) || len(got) != 2 {
		t.Errorf("rebuilt index.json names %v, want one=%s two=%s", got, mustDigest(t, img3), mustDigest(t, img2))
	}
}

// TestLayoutDamagedBlob flips a byte of a stored layer: reading it fails
// with a *BlobError, and publishing the image again replaces the blob.
func TestLayoutDamagedBlob(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	ref, _ := name.ParseReference("example.com/fn:1")
	img, _ := random.Image(4096, 1)
	l := NewLayout(dir)
	if _, err := l.Publish(ctx, img, ref); err != nil {
		t.Fatal(err)
	}
	ls, _ := img.Layers()
	d, _ := ls[0].Digest()
	blob := l.blobPath(d)
	b, err := os.ReadFile(blob)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0xff
	if err := os.WriteFile(blob, b, 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := l.Lookup(ref)
	if err != nil {
		t.Fatal(err)
	}
	gls, _ := got.Layers()
	rc, err := gls[0].Compressed()
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.Copy(io.Discard, rc)
	rc.Close()
	var be *BlobError
	if !errors.As(err, &be) {
		t.Errorf("reading a damaged blob = %v, want a *BlobError", err)
	}
	if _, err := l.Publish(ctx, img, ref); err != nil {
		t.Fatal(err)
	}
	if err := checkBlob(blob, d, int64(len(b))); err != nil {
		t.Errorf("blob after publishing again: %v", err)
	}
	got, err = l.Lookup(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Image(got); err != nil {
		t.Errorf("validate.Image() after repair = %v", err)
	}
}
