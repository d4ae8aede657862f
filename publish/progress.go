package publish

import (
	"context"
	"io"
	"sync"
	"sync/atomic"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kiln-build/kiln/internal/step"
)

// Reporting returns p reporting each publish as the step called stepName
// ("push") of the context's step sink: the layers it read to send them,
// and their bytes. A layer the destination has is not read, so a push of
// an unchanged image counts 0 layers.
func Reporting(p Publisher, stepName string) Publisher {
	return &reporting{Publisher: p, step: stepName}
}

type reporting struct {
	Publisher
	step string
}

func (r *reporting) Publish(ctx context.Context, img v1.Image, ref name.Reference) (name.Digest, error) {
	s := step.Start(ctx, r.step)
	if s == nil {
		return r.Publisher.Publish(ctx, img, ref)
	}
	s.Counts("layer")
	d, err := r.Publisher.Publish(ctx, &countingImage{Image: img, s: s, layers: map[v1.Hash]*countingLayer{}}, ref)
	s.End(err)
	return d, err
}

// countingImage is an image whose layers count the bytes read from them
// into a step; its manifest and digest are unchanged.
type countingImage struct {
	v1.Image
	s      *step.Step
	mu     sync.Mutex
	layers map[v1.Hash]*countingLayer
}

func (c *countingImage) Layers() ([]v1.Layer, error) {
	ls, err := c.Image.Layers()
	if err != nil {
		return nil, err
	}
	out := make([]v1.Layer, len(ls))
	for i, l := range ls {
		if out[i], err = c.counting(l); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (c *countingImage) LayerByDigest(h v1.Hash) (v1.Layer, error) {
	l, err := c.Image.LayerByDigest(h)
	if err != nil {
		return nil, err
	}
	return c.counting(l)
}

// counting returns the one counting layer of l's digest.
func (c *countingImage) counting(l v1.Layer) (v1.Layer, error) {
	d, err := l.Digest()
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if cl, ok := c.layers[d]; ok {
		return cl, nil
	}
	cl := &countingLayer{Layer: l, s: c.s}
	c.layers[d] = cl
	return cl, nil
}

// countingLayer counts itself once, when first read, and every byte read;
// a read that starts over (a retried upload) takes back what the one
// before it counted.
type countingLayer struct {
	v1.Layer
	s    *step.Step
	mu   sync.Mutex
	read *countingReader
}

func (l *countingLayer) Compressed() (io.ReadCloser, error) {
	rc, err := l.Layer.Compressed()
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.read == nil {
		l.s.Count(1)
	} else {
		l.s.Add(-l.read.n.Swap(0))
	}
	l.read = &countingReader{ReadCloser: rc, s: l.s}
	return l.read, nil
}

type countingReader struct {
	io.ReadCloser
	s *step.Step
	n atomic.Int64
}

func (r *countingReader) Read(p []byte) (int, error) {
	n, err := r.ReadCloser.Read(p)
	r.n.Add(int64(n))
	r.s.Add(int64(n))
	return n, err
}
