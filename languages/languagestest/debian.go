package languagestest

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"

	"github.com/kiln-build/kiln/languages"
	"github.com/kiln-build/kiln/layers"
)

// Unpacker is the Unpacker of every package a Debian lists.
const Unpacker = "test"

// Deb is a package of a Debian: its description and its files.
type Deb struct {
	languages.Deb
	// Files maps a path without the leading slash to the content of a
	// regular file.
	Files map[string]string
}

// NewDeb returns a package whose SHA256 digests its name, version,
// architecture, suite and files.
func NewDeb(name, version, arch, suite string, files map[string]string) Deb {
	h := sha256.New()
	fmt.Fprintf(h, "%q %q %q %q\n", name, version, arch, suite)
	for _, path := range slices.Sorted(maps.Keys(files)) {
		fmt.Fprintf(h, "%q %q\n", path, files[path])
	}
	sum := hex.EncodeToString(h.Sum(nil))
	return Deb{
		Deb: languages.Deb{
			Name: name, Version: version, Architecture: arch, Suite: suite,
			Filename: "pool/main/" + name + "_" + version + "_" + arch + ".deb", Size: 1, SHA256: sum, Unpacker: Unpacker,
		},
		Files: files,
	}
}

// Debian is a languages.Debian in memory. Locked lists every package of
// a base for the architecture; Versions lists those of a name in the
// order given, which stands for the base's suite order.
type Debian struct {
	// Bases maps a runtime base's name to its packages.
	Bases map[string][]Deb

	mu       sync.Mutex
	unpacked map[string]int
}

var _ languages.Debian = (*Debian)(nil)

// Locked implements languages.Debian.
func (d *Debian) Locked(base, arch string) ([]languages.Deb, error) {
	debs, ok := d.Bases[base]
	if !ok {
		return nil, fmt.Errorf("no base %s", base)
	}
	var out []languages.Deb
	for _, p := range debs {
		if p.Architecture == arch {
			out = append(out, p.Deb)
		}
	}
	slices.SortFunc(out, func(a, b languages.Deb) int { return cmp.Compare(a.Name, b.Name) })
	return out, nil
}

// Versions implements languages.Debian.
func (d *Debian) Versions(ctx context.Context, base, arch, name string) ([]languages.Deb, error) {
	debs, ok := d.Bases[base]
	if !ok {
		return nil, fmt.Errorf("no base %s", base)
	}
	var out []languages.Deb
	for _, p := range debs {
		if p.Architecture == arch && p.Name == name {
			out = append(out, p.Deb)
		}
	}
	return out, nil
}

// Unpack implements languages.Debian: it writes the package's files
// under dir.
func (d *Debian) Unpack(ctx context.Context, p languages.Deb, dir string) ([]layers.File, error) {
	var deb *Deb
	for _, debs := range d.Bases {
		for i := range debs {
			if debs[i].SHA256 == p.SHA256 {
				deb = &debs[i]
			}
		}
	}
	if deb == nil {
		return nil, fmt.Errorf("unpacking %s %s: no package with SHA256 %s", p.Name, p.Version, p.SHA256)
	}
	d.mu.Lock()
	if d.unpacked == nil {
		d.unpacked = map[string]int{}
	}
	d.unpacked[p.SHA256]++
	d.mu.Unlock()
	var files []layers.File
	for _, path := range slices.Sorted(maps.Keys(deb.Files)) {
		host := filepath.Join(dir, filepath.FromSlash(path))
		if err := os.MkdirAll(filepath.Dir(host), 0o755); err != nil {
			return nil, err
		}
		if err := os.WriteFile(host, []byte(deb.Files[path]), 0o644); err != nil {
			return nil, err
		}
		files = append(files, layers.File{Path: path, Mode: 0o644, Source: host})
	}
	return files, nil
}

// Unpacked returns how many times Unpack unpacked p.
func (d *Debian) Unpacked(p languages.Deb) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.unpacked[p.SHA256]
}
