package executor

import (
	"context"
	"fmt"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/kiln-build/kiln/publish"
)

// tee publishes one image everywhere a build says: the tarball and the
// layout first, then each destination's registry unless NoPush. A
// registry's manifest goes up after all its layers, so a failed push
// leaves no tag pointing at a partial image.
type tee struct {
	b        Build
	refs     []name.Reference
	registry publish.Publisher
}

var _ publish.Publisher = (*tee)(nil)

func (t *tee) Publish(ctx context.Context, img v1.Image, ref name.Reference) (name.Digest, error) {
	if len(t.b.Annotations) > 0 {
		img = mutate.Annotations(img, t.b.Annotations).(v1.Image)
	}
	d, err := img.Digest()
	if err != nil {
		return name.Digest{}, err
	}
	if t.b.TarPath != "" {
		images := map[name.Reference]v1.Image{}
		for _, r := range t.refs {
			images[r] = img
		}
		if err := tarball.MultiRefWriteToFile(t.b.TarPath, images); err != nil {
			return name.Digest{}, fmt.Errorf("--tar-path %s: %w", t.b.TarPath, err)
		}
	}
	if t.b.OCILayoutPath != "" {
		if _, err := publish.NewLayout(t.b.OCILayoutPath).Publish(ctx, img, t.refs[0]); err != nil {
			return name.Digest{}, fmt.Errorf("--oci-layout-path %s: %w", t.b.OCILayoutPath, err)
		}
	}
	if !t.b.NoPush {
		for _, r := range t.refs {
			if _, err := t.registry.Publish(ctx, img, r); err != nil {
				return name.Digest{}, err
			}
		}
	}
	return ref.Context().Digest(d.String()), nil
}
