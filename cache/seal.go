package cache

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"github.com/kiln-build/kiln/internal/xattr"
)

// TreeOption configures Tree.
type TreeOption func(*treeOptions)

type treeOptions struct {
	sealed bool
}

// Sealed records a digest of the tree's names, types, modes, owners, link
// targets and file contents once it is filled, and checks it each time the
// entry is used: an entry changed since (a file edited in an unpacked
// rootfs) is removed and filled again. The digest is kept in an extended
// attribute of the entry's directory; where the filesystem has none, the
// tree is not checked. A process checks each tree once, by its path and
// seal, and trusts it afterwards (see checkSealOnce): hashing a 200 MB
// rootfs layer on every RUN costs more than the step, and what edits an
// entry behind the store's back is a person or another program between
// builds, not the build itself. Default: not sealed.
func Sealed() TreeOption { return func(o *treeOptions) { o.sealed = true } }

// sealAttr is the extended attribute holding a sealed tree's digest.
const sealAttr = "user.kiln.tree"

// errNoSeal is a sealed kind's entry that has no seal.
var errNoSeal = errors.New("the tree has no seal")

// sealChecked holds the trees this process compared with their seal, as
// path and seal: a tree is hashed once per process, not on every use.
var sealChecked sync.Map

// ForgetSealChecks makes this process check each sealed tree again at its
// next use, as a new process would: for tests that edit a tree, and for a
// long-lived process that wants to notice edits made since.
func ForgetSealChecks() { sealChecked.Clear() }

func sealCheckKey(dir, seal string) string { return dir + "\x00" + seal }

// seal records the digest of the tree at dir, and returns it.
func seal(dir string) (string, error) {
	d, err := treeDigest(dir)
	if err != nil {
		return "", fmt.Errorf("sealing %s: %w", dir, err)
	}
	if err := xattr.Set(dir, sealAttr, d); err != nil && !errors.Is(err, errors.ErrUnsupported) {
		return "", fmt.Errorf("sealing %s: %w", dir, err)
	}
	return d, nil
}

// checkSealOnce is checkSeal for a tree this process has not yet checked
// with its current seal.
func checkSealOnce(dir string) error {
	want, err := xattr.Get(dir, sealAttr)
	if err == nil {
		if _, ok := sealChecked.Load(sealCheckKey(dir, want)); ok {
			return nil
		}
	}
	if err := checkSeal(dir); err != nil {
		return err
	}
	if want != "" {
		sealChecked.Store(sealCheckKey(dir, want), struct{}{})
	}
	return nil
}

// checkSeal compares the tree at dir with its seal.
func checkSeal(dir string) error {
	want, err := xattr.Get(dir, sealAttr)
	if errors.Is(err, xattr.ErrNoAttr) {
		err = errNoSeal
	}
	if errors.Is(err, errors.ErrUnsupported) {
		return nil
	}
	if err != nil {
		return err
	}
	got, err := treeDigest(dir)
	if err != nil {
		return err
	}
	if got != want {
		return fmt.Errorf("the tree changed since it was sealed: digest %s, sealed %s", got, want)
	}
	return nil
}

// treeDigest hashes what a tree holds, in lexical order; a file the
// process may not read counts by its size.
func treeDigest(dir string) (string, error) {
	h := sha256.New()
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == dir {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		uid, gid, rdev := owner(fi)
		fmt.Fprintf(h, "%q %o %d %d %d %d", rel, fi.Mode(), uid, gid, rdev, fi.Size())
		switch {
		case fi.Mode().IsRegular():
			f, err := os.Open(p)
			if errors.Is(err, fs.ErrPermission) {
				break
			}
			if err != nil {
				return err
			}
			_, err = io.Copy(h, f)
			f.Close()
			if err != nil {
				return err
			}
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			fmt.Fprintf(h, " -> %q", target)
		}
		h.Write([]byte{'\n'})
		return nil
	})
	if err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
