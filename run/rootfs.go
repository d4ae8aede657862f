package run

import "path/filepath"

// Rootfs is an unpacked image: the directories overlayfs stacks, read-only,
// into the image's root filesystem.
type Rootfs struct {
	// Dir holds the directories of Layers. It lives in the cache.
	Dir string
	// Layers are the lower directories, relative to Dir and top first, as
	// overlayfs's lowerdir lists them: one per layer, or one holding every
	// layer applied when the image is flattened (see Unpack).
	Layers []string
}

// paths returns the host paths of the layers, top first.
func (r *Rootfs) paths() []string {
	ps := make([]string, len(r.Layers))
	for i, l := range r.Layers {
		ps[i] = filepath.Join(r.Dir, l)
	}
	return ps
}
