package cache

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// KindUsage is how much of the cache one kind takes, or, from Prune and
// Clear, how much of it they removed.
type KindUsage struct {
	Kind Kind `json:"kind,omitempty"`
	// Entries counts the kind's entries: layers, directories, files,
	// images named in the local store, secrets, temporary files.
	Entries int `json:"entries"`
	// Bytes is the apparent size of every file and directory of the kind,
	// entries or not, as `du -sb` counts it: a file with several hard
	// links once.
	Bytes int64 `json:"bytes"`
	// Oldest and Newest are the least and the most recent last use of an
	// entry.
	Oldest time.Time `json:"oldest,omitzero"`
	Newest time.Time `json:"newest,omitzero"`
}

func (u *KindUsage) add(o KindUsage) {
	u.Entries += o.Entries
	u.Bytes += o.Bytes
	u.used(o.Oldest)
	u.used(o.Newest)
}

func (u *KindUsage) used(t time.Time) {
	if t.IsZero() {
		return
	}
	if u.Oldest.IsZero() || t.Before(u.Oldest) {
		u.Oldest = t
	}
	if t.After(u.Newest) {
		u.Newest = t
	}
}

// Usage is a KindUsage per kind, in the order of Kinds.
type Usage []KindUsage

// Total adds up every kind; its Kind is zero.
func (u Usage) Total() KindUsage {
	var t KindUsage
	for _, k := range u {
		t.add(k)
	}
	return t
}

// Of returns the usage of kind k.
func (u Usage) Of(k Kind) KindUsage {
	for _, ku := range u {
		if ku.Kind == k {
			return ku
		}
	}
	return KindUsage{Kind: k}
}

// Usage returns the entries and bytes of every kind. The bytes of all
// kinds add up to the size of the cache directory, as `du -sb` gives it,
// but for files written or removed meanwhile.
func (s *Store) Usage(ctx context.Context) (Usage, error) {
	bytes, err := s.sizes(ctx)
	if err != nil {
		return nil, err
	}
	var out Usage
	for _, k := range Kinds() {
		u := KindUsage{Kind: k, Bytes: bytes[k]}
		if k == Images {
			n, times := s.images()
			u.Entries = n
			for _, t := range times {
				u.used(t)
			}
		} else {
			items, err := s.items(k)
			if err != nil {
				return nil, err
			}
			for _, it := range items {
				if it.entry {
					u.Entries++
					u.used(it.modTime)
				}
			}
		}
		out = append(out, u)
	}
	return out, nil
}

// sizes walks the cache directory once and adds up the apparent sizes of
// what it finds per kind: each path belongs to the kind that claims the
// nearest directory above it, else to Other.
func (s *Store) sizes(ctx context.Context) (map[Kind]int64, error) {
	claims := claimed()
	out := map[Kind]int64{}
	seen := map[fileID]bool{}
	var walk func(abs, rel string, k Kind) error
	walk = func(abs, rel string, k Kind) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		fi, err := os.Lstat(abs)
		if err != nil {
			return nil // removed meanwhile
		}
		if id, ok := hardLinked(fi); ok {
			if seen[id] {
				return nil
			}
			seen[id] = true
		}
		out[k] += fi.Size()
		if !fi.IsDir() {
			return nil
		}
		des, err := os.ReadDir(abs)
		if err != nil {
			return nil // unreadable (another user's tree): count what we can
		}
		for _, de := range des {
			crel := filepath.Join(rel, de.Name())
			ck := k
			if c, ok := claims[crel]; ok && de.IsDir() {
				ck = c
			}
			if err := walk(filepath.Join(abs, de.Name()), crel, ck); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(s.dir, "", Other); err != nil {
		return nil, fmt.Errorf("measuring the cache: %w", err)
	}
	return out, nil
}

type fileID struct{ dev, ino uint64 }

// hardLinked returns the identity of a file that has other names, which
// must be counted once.
func hardLinked(fi fs.FileInfo) (fileID, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || fi.IsDir() || st.Nlink < 2 {
		return fileID{}, false
	}
	return fileID{dev: uint64(st.Dev), ino: uint64(st.Ino)}, true
}

// rule says when Prune removes an item.
type rule int

const (
	// byAge: an entry, removed when last used before the cutoff and no
	// process holds it.
	byAge rule = iota
	// unheld: in tmp/, removed when no process holds it and it is older
	// than grace.
	unheld
	// legacyTemp: a temporary file of an older kiln, which took no locks,
	// removed when older than the cutoff and than legacyGrace.
	legacyTemp
	// earlierBoot: an entry of a volatile kind from an earlier boot, never
	// used again.
	earlierBoot
	// clearOnly: secrets and unknown files, left to Clear.
	clearOnly
)

// item is one thing of a kind on disk.
type item struct {
	path    string
	modTime time.Time
	// entry: counted as an entry by Usage.
	entry bool
	rule  rule
}

// items lists what kind k has on disk, but for Images, whose content is
// an OCI layout, and the blobs of Layers, which their keys refer to.
func (s *Store) items(k Kind) ([]item, error) {
	spec := k.spec()
	claims := claimed()
	var out []item
	add := func(path string, fi fs.FileInfo, entry bool, r rule) {
		out = append(out, item{path: path, modTime: fi.ModTime(), entry: entry, rule: r})
	}
	// list calls f with each thing in dir that another kind does not
	// claim.
	list := func(dir string, f func(path string, fi fs.FileInfo)) error {
		des, err := os.ReadDir(dir)
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) {
			// Gone, or another user's tree (root's unpacked images):
			// list what can be read.
			return nil
		}
		if err != nil {
			return fmt.Errorf("listing %s: %w", dir, err)
		}
		for _, de := range des {
			p := filepath.Join(dir, de.Name())
			if c, ok := claims[s.rel(p)]; ok && c != k {
				continue
			}
			fi, err := de.Info()
			if err != nil {
				continue // removed meanwhile
			}
			f(p, fi)
		}
		return nil
	}
	// entries lists the entries depth levels below dir; r is their rule.
	var entries func(dir string, depth int, r rule) error
	entries = func(dir string, depth int, r rule) error {
		return list(dir, func(p string, fi fs.FileInfo) {
			switch {
			case strings.HasPrefix(fi.Name(), "."):
				add(p, fi, false, legacyTemp)
			case depth == 1:
				add(p, fi, true, r)
			case fi.IsDir():
				entries(p, depth-1, r)
			default:
				add(p, fi, false, legacyTemp)
			}
		})
	}

	var err error
	switch spec.shape {
	case shapeLayers:
		err = list(s.keysDir(), func(p string, fi fs.FileInfo) {
			isKey := strings.HasSuffix(fi.Name(), ".json") && !strings.HasPrefix(fi.Name(), ".")
			if isKey {
				add(p, fi, true, byAge)
			} else {
				add(p, fi, false, legacyTemp)
			}
		})
	case shapeDir, shapeFile:
		dir := s.kindDir(k)
		if !spec.volatile {
			err = entries(dir, spec.depth, byAge)
			break
		}
		boot, berr := s.opts.bootID()
		if berr != nil {
			return nil, berr
		}
		err = list(dir, func(p string, fi fs.FileInfo) {
			switch {
			case strings.HasPrefix(fi.Name(), "."):
				add(p, fi, false, legacyTemp)
			case fi.Name() == boot:
				entries(p, spec.depth, byAge)
			default:
				entries(p, spec.depth, earlierBoot)
			}
		})
	case shapeSecrets:
		err = entries(s.kindDir(k), 1, clearOnly)
	case shapeTemp:
		err = list(s.kindDir(k), func(p string, fi fs.FileInfo) { add(p, fi, true, unheld) })
		for _, d := range spec.legacy {
			if err != nil {
				break
			}
			err = list(filepath.Join(s.dir, filepath.FromSlash(d)), func(p string, fi fs.FileInfo) { add(p, fi, true, legacyTemp) })
		}
	case shapeOther:
		// What is neither claimed nor on the way to a claimed directory.
		above := map[string]bool{}
		for rel := range claims {
			for d := filepath.Dir(rel); d != "."; d = filepath.Dir(d) {
				above[d] = true
			}
		}
		var walk func(dir string) error
		walk = func(dir string) error {
			return list(dir, func(p string, fi fs.FileInfo) {
				if above[s.rel(p)] && fi.IsDir() {
					walk(p)
					return
				}
				add(p, fi, true, clearOnly)
			})
		}
		err = walk(s.dir)
	}
	return out, err
}

// rel returns path relative to the cache directory.
func (s *Store) rel(path string) string {
	r, err := filepath.Rel(s.dir, path)
	if err != nil {
		return path
	}
	return r
}

// du returns the apparent size of the tree at path.
func du(path string) int64 {
	var n int64
	seen := map[fileID]bool{}
	_ = filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return nil
		}
		if id, ok := hardLinked(fi); ok {
			if seen[id] {
				return nil
			}
			seen[id] = true
		}
		n += fi.Size()
		return nil
	})
	return n
}

// Inventory is what `kiln cache ls` shows.
type Inventory struct {
	Dir string `json:"dir"`
	// Layers are the cached layers, most recently used first.
	Layers []Entry `json:"layers"`
	// Kinds is the usage of every kind, Total their sum.
	Kinds Usage     `json:"kinds"`
	Total KindUsage `json:"total"`
}

// Inventory lists the layers and measures every kind.
func (s *Store) Inventory(ctx context.Context) (*Inventory, error) {
	layers, err := s.List(ctx)
	if err != nil {
		return nil, err
	}
	u, err := s.Usage(ctx)
	if err != nil {
		return nil, err
	}
	return &Inventory{Dir: s.dir, Layers: layers, Kinds: u, Total: u.Total()}, nil
}
