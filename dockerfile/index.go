package dockerfile

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"runtime"
	"strings"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sync/errgroup"
)

// layerIndex lists what a layer's tar holds without the contents of its
// files: its headers in order, and the bytes of the files any stage may
// read (inlined). A stage's filesystem is seen through its layers'
// indexes, which saves decompressing every layer of a base image each
// time a step misses; the tars are read only for the files a step copies.
type layerIndex struct {
	Entries []indexEntry `json:"entries"`
}

type indexEntry struct {
	Name     string `json:"n"`
	Type     byte   `json:"t"`
	Mode     int64  `json:"m,omitempty"`
	UID      int    `json:"u,omitempty"`
	GID      int    `json:"g,omitempty"`
	Size     int64  `json:"s,omitempty"`
	Linkname string `json:"l,omitempty"`
	Data     []byte `json:"d,omitempty"`
}

func (e indexEntry) header() *tar.Header {
	return &tar.Header{Name: e.Name, Typeflag: e.Type, Mode: e.Mode, Uid: e.UID, Gid: e.GID, Size: e.Size, Linkname: e.Linkname}
}

// inlined says whether an index holds the bytes of the file at p: the
// databases that --chown, USER and WORKDIR read names from.
func inlined(p string) bool { return p == "etc/passwd" || p == "etc/group" }

// maxInlined bounds the bytes of an inlined file; a larger one is read
// from its layer when needed.
const maxInlined = 1 << 20

// indexVersion is part of an index's key: a change of layerIndex's
// format changes it.
const indexVersion = "kiln dockerfile layer index v1"

// layerIndexes gives the indexes of layers, made once per build and kept
// in store across builds.
type layerIndexes struct {
	// store keeps indexes as one-file layers under keys derived from the
	// diff IDs; nil keeps them for the build only.
	store Cache
	mu    sync.Mutex
	// byID are the indexes made or being made: stages that start
	// together from one base wait for one read of each layer.
	byID map[v1.Hash]*indexFlight
}

type indexFlight struct {
	done chan struct{}
	ix   *layerIndex
	err  error
}

func newLayerIndexes(store Cache) *layerIndexes {
	return &layerIndexes{store: store, byID: map[v1.Hash]*indexFlight{}}
}

// get returns the index of l, whose diff ID is diffID.
func (x *layerIndexes) get(ctx context.Context, l v1.Layer, diffID v1.Hash) (*layerIndex, error) {
	x.mu.Lock()
	f, ok := x.byID[diffID]
	if !ok {
		f = &indexFlight{done: make(chan struct{})}
		x.byID[diffID] = f
	}
	x.mu.Unlock()
	if ok {
		select {
		case <-f.done:
			return f.ix, f.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	f.ix, f.err = x.make(ctx, l, diffID)
	if f.err != nil {
		// A later caller tries again (this one may have been cancelled).
		x.mu.Lock()
		delete(x.byID, diffID)
		x.mu.Unlock()
	}
	close(f.done)
	return f.ix, f.err
}

// getAll returns the indexes of ls, made side by side: on a cold cache
// each is a decompression of its layer.
func (x *layerIndexes) getAll(ctx context.Context, ls []v1.Layer, diffIDs []v1.Hash) ([]*layerIndex, error) {
	out := make([]*layerIndex, len(ls))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(runtime.GOMAXPROCS(0))
	for i := range ls {
		g.Go(func() error {
			ix, err := x.get(gctx, ls[i], diffIDs[i])
			if err != nil {
				return fmt.Errorf("layer %s: %w", diffIDs[i], err)
			}
			out[i] = ix
			return nil
		})
	}
	return out, g.Wait()
}

func (x *layerIndexes) make(ctx context.Context, l v1.Layer, diffID v1.Hash) (*layerIndex, error) {
	key, _, err := v1.SHA256(strings.NewReader(indexVersion + "\n" + diffID.String()))
	if err != nil {
		return nil, err
	}
	if ix, err := x.load(ctx, key); err == nil {
		return ix, nil
	}
	ix, err := readIndex(l)
	if err != nil {
		return nil, err
	}
	if err := x.save(ctx, key, diffID, ix); err != nil {
		return nil, err
	}
	return ix, nil
}

// load reads the index stored under key; any error (none stored, or one
// unreadable) makes the caller read the layer again.
func (x *layerIndexes) load(ctx context.Context, key v1.Hash) (*layerIndex, error) {
	if x.store == nil {
		return nil, errors.New("no index store")
	}
	l, err := x.store.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	rc, err := l.Uncompressed()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	if _, err := tr.Next(); err != nil {
		return nil, err
	}
	var ix layerIndex
	if err := json.NewDecoder(tr).Decode(&ix); err != nil {
		return nil, err
	}
	return &ix, nil
}

func (x *layerIndexes) save(ctx context.Context, key, diffID v1.Hash, ix *layerIndex) error {
	if x.store == nil {
		return nil
	}
	b, err := json.Marshal(ix)
	if err != nil {
		return err
	}
	_, err = x.store.Put(ctx, key, "index of layer "+diffID.String(), func(w io.Writer) error {
		tw := tar.NewWriter(w)
		if err := tw.WriteHeader(&tar.Header{Name: "index.json", Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(b))}); err != nil {
			return err
		}
		if _, err := tw.Write(b); err != nil {
			return err
		}
		return tw.Close()
	})
	if err != nil {
		return fmt.Errorf("storing the index of layer %s: %w", diffID, err)
	}
	return nil
}

// readIndex reads l's tar for its index.
func readIndex(l v1.Layer) (*layerIndex, error) {
	rc, err := l.Uncompressed()
	if err != nil {
		return nil, fmt.Errorf("reading a layer: %w", err)
	}
	defer rc.Close()
	ix := &layerIndex{}
	tr := tar.NewReader(rc)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return ix, nil
		}
		if err != nil {
			return nil, fmt.Errorf("reading a layer: %w", err)
		}
		e := indexEntry{Name: hdr.Name, Type: hdr.Typeflag, Mode: hdr.Mode, UID: hdr.Uid, GID: hdr.Gid, Size: hdr.Size, Linkname: hdr.Linkname}
		if hdr.Typeflag == tar.TypeReg && hdr.Size <= maxInlined && inlined(cleanName(hdr.Name)) {
			var buf bytes.Buffer
			if _, err := io.Copy(&buf, tr); err != nil {
				return nil, fmt.Errorf("reading a layer: %w", err)
			}
			e.Data = buf.Bytes()
		}
		ix.Entries = append(ix.Entries, e)
	}
}

// cleanName is a tar entry's name as a path from the root, with no
// leading slash; "" is the root.
func cleanName(name string) string {
	return strings.TrimPrefix(path.Clean("/"+name), "/")
}
