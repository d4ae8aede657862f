package dockerfile

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/internal/step"
	"github.com/kiln-build/kiln/layers"
)

// emptyDiffID is the diffID of a tar with no entries (1024 zero bytes):
// a step that changed nothing adds no layer, as BuildKit's exporter drops
// empty layers.
var emptyDiffID = v1.Hash{Algorithm: "sha256", Hex: "5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef"}

// keyVersion changes whenever the way a step makes its layer changes, so
// that old cache entries stop matching.
const keyVersion = "kiln/dockerfile/v1"

// stepKey starts the key of the stage's next step: the layers it builds
// on, by content, and the epoch the layer is written with.
func (st *stage) stepKey(kind string) *layers.Key {
	k := layers.NewKey(keyVersion).String(kind).String(st.b.opts.Epoch.Format(time.RFC3339Nano))
	k.String(formatPlatform(st.platform))
	for _, d := range st.diffIDs {
		k.Hash(d)
	}
	return k
}

// layerWriter writes the uncompressed tar of a step's layer. reused says
// the layer came from the cache all the same, under another key (a COPY
// --from whose files are the same bytes as before).
type layerWriter func(ctx context.Context, w io.Writer) (reused bool, err error)

// built is the layerWriter of a step that always makes its layer.
func built(write func(ctx context.Context, w io.Writer) error) layerWriter {
	return func(ctx context.Context, w io.Writer) (bool, error) { return false, write(ctx, w) }
}

// layerStep adds the layer of one instruction: from the cache under key,
// or made by write (an uncompressed tar) and stored. name is the step's
// name in progress and errors, createdBy its history entry.
func (st *stage) layerStep(ctx context.Context, key v1.Hash, name, createdBy string, write layerWriter) error {
	s := step.Start(ctx, name)
	l, cached, err := st.layer(ctx, key, name, s, write)
	if err != nil {
		s.End(err)
		return err
	}
	diffID, err := l.DiffID()
	if err != nil {
		s.End(err)
		return err
	}
	if diffID == emptyDiffID {
		s.Finish(step.Result{Cached: cached, Empty: true})
		st.history(createdBy, false)
		return nil
	}
	size, _ := l.Size()
	s.Finish(step.Result{Cached: cached, Bytes: size})
	st.layers = append(st.layers, l)
	st.diffIDs = append(st.diffIDs, diffID)
	st.history(createdBy, true)
	return nil
}

func (st *stage) layer(ctx context.Context, key v1.Hash, name string, s *step.Step, write layerWriter) (v1.Layer, bool, error) {
	c := st.b.opts.Cache
	if !st.b.opts.NoCache {
		l, err := c.Get(ctx, key)
		if err == nil {
			return l, true, nil
		}
		if !errors.Is(err, cache.ErrNotFound) {
			return nil, false, err
		}
	}
	// The step's own error reads better than the store's wrapping of it.
	var werr error
	var reused bool
	l, err := c.Put(ctx, key, name, func(w io.Writer) error {
		reused, werr = write(ctx, s.Writer(w))
		return werr
	})
	if werr != nil {
		return nil, false, fmt.Errorf("%s: %w", name, werr)
	}
	return l, reused, err
}

// normaliseTar copies the tar stream r to w with every modification time
// clamped to epoch and access and change times dropped, so that a command
// that writes the same files gives the same layer whenever it runs.
func normaliseTar(r io.Reader, w io.Writer, epoch time.Time) error {
	tr := tar.NewReader(r)
	tw := tar.NewWriter(w)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("reading the layer: %w", err)
		}
		hdr.ModTime = hdr.ModTime.Truncate(time.Second)
		if hdr.ModTime.After(epoch) {
			hdr.ModTime = epoch
		}
		hdr.AccessTime, hdr.ChangeTime = time.Time{}, time.Time{}
		delete(hdr.PAXRecords, "atime")
		delete(hdr.PAXRecords, "ctime")
		delete(hdr.PAXRecords, "mtime")
		hdr.Uname, hdr.Gname = "", ""
		hdr.Format = tar.FormatUnknown
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("writing %s: %w", hdr.Name, err)
		}
		if _, err := io.Copy(tw, tr); err != nil {
			return fmt.Errorf("writing %s: %w", hdr.Name, err)
		}
	}
	return tw.Close()
}

// image assembles the stage's layers and config as an OCI image.
func (st *stage) image() (v1.Image, error) {
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	ls := make([]v1.Layer, len(st.layers))
	for i, l := range st.layers {
		mt, err := l.MediaType()
		if err != nil {
			return nil, err
		}
		ls[i] = l
		if mt == types.DockerLayer {
			ls[i] = ociLayer{l}
		}
	}
	img, err := mutate.AppendLayers(img, ls...)
	if err != nil {
		return nil, fmt.Errorf("stacking layers: %w", err)
	}
	base, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf := st.cfg.DeepCopy()
	cf.RootFS = base.RootFS
	cf.Created = v1.Time{Time: st.b.opts.Epoch}
	cf.OS = st.platform.OS
	cf.Architecture = st.platform.Architecture
	cf.Variant = st.platform.Variant
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, fmt.Errorf("writing the image config: %w", err)
	}
	return img, nil
}

// ociLayer presents a Docker gzip layer of a base image as the OCI layer
// it is byte for byte, so that the image is OCI throughout.
type ociLayer struct{ v1.Layer }

func (ociLayer) MediaType() (types.MediaType, error) { return types.OCILayer, nil }
