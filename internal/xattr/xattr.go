// Package xattr reads and writes a file's extended attributes, where kiln
// records what it has checked of a file (a tree's digest, a blob verified)
// so that it need not check again while the file is unchanged.
package xattr

import "errors"

// ErrNoAttr is returned by Get for an attribute the file does not have.
var ErrNoAttr = errors.New("no such extended attribute")

// Set sets the attribute name of path (not following a symlink) to value;
// errors.ErrUnsupported where the filesystem or system has none.
func Set(path, name, value string) error { return set(path, name, value) }

// Get returns the attribute name of path (not following a symlink):
// ErrNoAttr when it is unset, errors.ErrUnsupported where the filesystem
// or system has none.
func Get(path, name string) (string, error) { return get(path, name) }
