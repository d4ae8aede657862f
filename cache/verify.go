package cache

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Problem is an entry of the store that is not what it claims to be.
type Problem struct {
	Kind   Kind   `json:"kind"`
	Path   string `json:"path"`
	Reason string `json:"reason"`
}

// Verification is what Verify checked and found.
type Verification struct {
	// Checked counts the entries, blobs and trees checked, per kind.
	Checked  map[Kind]int `json:"checked"`
	Problems []Problem    `json:"problems"`
}

// Err is an error counting the problems, or nil when there is none.
func (v *Verification) Err() error {
	if len(v.Problems) == 0 {
		return nil
	}
	return fmt.Errorf("%d damaged cache entries; each is made anew when next used", len(v.Problems))
}

// Verify checks everything the store holds, and changes nothing (the next
// use of a damaged entry drops and remakes it): every layer's key file
// names its key and a blob that hashes to its digest and size; every blob
// of the local image store hashes to its name, and index.json reads and
// reaches only blobs that are there; every file entry named by its digest
// hashes to it; every unpacked rootfs matches its seal. On an error it
// returns what it found so far.
func (s *Store) Verify(ctx context.Context) (*Verification, error) {
	v := &Verification{Checked: map[Kind]int{}}
	bad := func(k Kind, p, format string, args ...any) {
		v.Problems = append(v.Problems, Problem{Kind: k, Path: p, Reason: fmt.Sprintf(format, args...)})
	}
	// Layers: key files, then every blob by its name.
	keys, err := readDir(s.keysDir())
	if err != nil {
		return v, err
	}
	for _, de := range keys {
		if err := ctx.Err(); err != nil {
			return v, err
		}
		p := filepath.Join(s.keysDir(), de.Name())
		v.Checked[Layers]++
		b, err := os.ReadFile(p)
		if err != nil {
			bad(Layers, p, "%v", err)
			continue
		}
		var e entry
		if err := json.Unmarshal(b, &e); err != nil || e.Digest.Hex == "" {
			bad(Layers, p, "unreadable entry")
			continue
		}
		if want := strings.TrimSuffix(de.Name(), ".json"); e.Key != want {
			bad(Layers, p, "the entry is for key %q", e.Key)
		}
		if err := verify(s.blobPath(e.Digest), e.Descriptor); err != nil {
			bad(Layers, p, "%v", err)
		}
	}
	s.verifyBlobs(ctx, Layers, filepath.Dir(s.blobsDir()), v, bad)

	// The local image store.
	images := s.kindDir(Images)
	if _, err := os.Stat(images); err == nil {
		s.verifyBlobs(ctx, Images, filepath.Join(images, "blobs"), v, bad)
		if _, err := os.Stat(filepath.Join(images, "index.json")); err == nil {
			if seen, err := reachable(images); err != nil {
				bad(Images, filepath.Join(images, "index.json"), "%v", err)
			} else {
				for h := range seen {
					if _, err := os.Stat(blobPath(images, h)); err != nil {
						bad(Images, blobPath(images, h), "named by index.json, missing")
					}
				}
			}
		}
	}

	// Files named by their digest, and sealed trees.
	for _, k := range Kinds() {
		spec := k.spec()
		dir := s.kindDir(k)
		switch {
		case spec.shape == shapeFile:
			alg := path.Base(spec.dir)
			des, err := readDir(dir)
			if err != nil {
				return v, err
			}
			for _, de := range des {
				hexName, _, _ := strings.Cut(de.Name(), ".")
				want := Digest{Algorithm: alg, Hex: hexName, Size: -1}
				if _, err := want.hasher(); err != nil {
					continue // not named by its digest
				}
				p := filepath.Join(dir, de.Name())
				v.Checked[k]++
				if got, err := fileDigest(p, want); err != nil {
					bad(k, p, "%v", err)
				} else if got != want {
					bad(k, p, "content is %s", got)
				}
			}
		case k == Rootfs || k == RootfsLayers:
			var trees []string
			if spec.volatile {
				trees, _ = filepath.Glob(filepath.Join(dir, "*", "*"))
			} else {
				des, _ := readDir(dir)
				for _, de := range des {
					// rootfs/ also holds the layers kind's folder.
					if de.IsDir() && de.Name() != "layers" {
						trees = append(trees, filepath.Join(dir, de.Name()))
					}
				}
			}
			for _, p := range trees {
				v.Checked[k]++
				if err := checkSeal(p); err != nil {
					bad(k, p, "%v", err)
				}
			}
		}
	}
	return v, nil
}

// verifyBlobs checks that every blob under root (root/ALG/HEX) hashes to
// its name.
func (s *Store) verifyBlobs(ctx context.Context, k Kind, root string, v *Verification, bad func(Kind, string, string, ...any)) {
	algs, _ := readDir(root)
	for _, alg := range algs {
		blobs, _ := readDir(filepath.Join(root, alg.Name()))
		for _, b := range blobs {
			if ctx.Err() != nil {
				return
			}
			want := Digest{Algorithm: alg.Name(), Hex: b.Name(), Size: -1}
			if _, err := want.hasher(); err != nil || !b.Type().IsRegular() {
				continue // a temporary file
			}
			p := filepath.Join(root, alg.Name(), b.Name())
			v.Checked[k]++
			if got, err := fileDigest(p, want); err != nil {
				bad(k, p, "%v", err)
			} else if got != want {
				bad(k, p, "blob %s hashes to %s:%s", v1.Hash{Algorithm: want.Algorithm, Hex: want.Hex}, got.Algorithm, got.Hex)
			}
		}
	}
}

func readDir(dir string) ([]fs.DirEntry, error) {
	des, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return des, err
}

// fileDigest hashes the file at path as want asks.
func fileDigest(path string, want Digest) (Digest, error) {
	f, err := os.Open(path)
	if err != nil {
		return Digest{}, err
	}
	defer f.Close()
	return digestOf(f, want)
}
