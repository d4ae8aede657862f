package bases

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"sort"

	"github.com/kiln-build/kiln/runtime-images/debian"
)

// LockFile pins the packages of a recipe for each architecture.
type LockFile struct {
	// Recipe is the recipe's name.
	Recipe string `json:"recipe"`
	// Inputs digests the recipe fields the lock was made from: suites,
	// component, architectures, packages and exclusions.
	Inputs string `json:"inputs"`
	// Architectures maps a Debian architecture to its packages, sorted by
	// name.
	Architectures map[string][]LockedPackage `json:"architectures"`
}

// LockedPackage pins one package.
type LockedPackage struct {
	Name         string `json:"name"`
	Version      string `json:"version"`
	Architecture string `json:"architecture"`
	// Suite decides the archive the package is fetched from.
	Suite    string `json:"suite"`
	Filename string `json:"filename"`
	Size     int64  `json:"size"`
	SHA256   string `json:"sha256"`
}

// Package returns the pin as a package to download.
func (p LockedPackage) Package() debian.Package {
	return debian.Package{
		Name: p.Name, Version: p.Version, Architecture: p.Architecture, Suite: p.Suite,
		Filename: p.Filename, Size: p.Size, SHA256: p.SHA256,
	}
}

// Lock resolves the recipe against the current indexes of its suites, for
// every architecture, and returns the lock to write next to it.
func Lock(ctx context.Context, r *Recipe, ix Fetcher) (*LockFile, error) {
	lock := &LockFile{Recipe: r.Name, Inputs: r.inputs(), Architectures: make(map[string][]LockedPackage)}
	for _, arch := range r.Architectures {
		var indexes []*debian.Index
		for _, suite := range r.Suites {
			idx, err := ix.Index(ctx, suite, r.Component, arch)
			if err != nil {
				return nil, fmt.Errorf("locking %s: %w", r.Name, err)
			}
			indexes = append(indexes, idx)
		}
		merged, err := debian.Merge(indexes...)
		if err != nil {
			return nil, fmt.Errorf("locking %s: %w", r.Name, err)
		}
		pkgs, err := merged.Resolve(r.requests(arch), r.Exclude)
		if err != nil {
			return nil, fmt.Errorf("locking %s for %s: %w", r.Name, arch, err)
		}
		locked := make([]LockedPackage, 0, len(pkgs))
		for _, p := range pkgs {
			locked = append(locked, LockedPackage{
				Name: p.Name, Version: p.Version, Architecture: p.Architecture, Suite: p.Suite,
				Filename: p.Filename, Size: p.Size, SHA256: p.SHA256,
			})
		}
		lock.Architectures[arch] = locked
	}
	return lock, nil
}

// Extend resolves packages a build adds to the recipe's base (faas-cli's
// ADDITIONAL_PACKAGE and build_options), with their dependency closure,
// against the recipe's suites as the mirror serves them now. What the base
// already pins, and what the recipe excludes, counts as installed. The
// result is pinned by SHA256 like a lock's packages; unlike them it follows
// the mirror, since these packages are the user's choice, not kiln's.
func Extend(ctx context.Context, r *Recipe, arch string, names []string, ix Fetcher) ([]LockedPackage, error) {
	base, err := r.locked(arch)
	if err != nil {
		return nil, err
	}
	installed := slices.Clone(r.Exclude)
	for _, p := range base {
		installed = append(installed, p.Name)
	}
	var reqs []debian.Request
	for _, n := range names {
		if !slices.Contains(installed, n) {
			reqs = append(reqs, debian.Request{Name: n, Depends: true})
		}
	}
	if len(reqs) == 0 {
		return nil, nil
	}
	var indexes []*debian.Index
	for _, suite := range r.Suites {
		idx, err := ix.Index(ctx, suite, r.Component, arch)
		if err != nil {
			return nil, fmt.Errorf("adding packages to %s: %w", r.Name, err)
		}
		indexes = append(indexes, idx)
	}
	merged, err := debian.Merge(indexes...)
	if err != nil {
		return nil, fmt.Errorf("adding packages to %s: %w", r.Name, err)
	}
	pkgs, err := merged.Resolve(reqs, installed)
	if err != nil {
		return nil, fmt.Errorf("adding packages to %s for %s: %w", r.Name, arch, err)
	}
	out := make([]LockedPackage, 0, len(pkgs))
	for _, p := range pkgs {
		if slices.Contains(installed, p.Name) {
			continue
		}
		out = append(out, LockedPackage{
			Name: p.Name, Version: p.Version, Architecture: p.Architecture, Suite: p.Suite,
			Filename: p.Filename, Size: p.Size, SHA256: p.SHA256,
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Marshal returns the lock as the file holds it: JSON indented by two
// spaces, packages sorted by name, keys in a fixed order, so that the same
// lock always gives the same bytes and a diff shows only what changed.
func (l *LockFile) Marshal() ([]byte, error) {
	sorted := LockFile{Recipe: l.Recipe, Inputs: l.Inputs, Architectures: make(map[string][]LockedPackage)}
	for arch, pkgs := range l.Architectures {
		pkgs = slices.Clone(pkgs)
		sort.Slice(pkgs, func(i, j int) bool { return pkgs[i].Name < pkgs[j].Name })
		sorted.Architectures[arch] = pkgs
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(sorted); err != nil {
		return nil, fmt.Errorf("encoding the lock of %s: %w", l.Recipe, err)
	}
	return buf.Bytes(), nil
}

// Digest returns the SHA256 of the lock's file form, "sha256:<hex>".
func (l *LockFile) Digest() (string, error) {
	data, err := l.Marshal()
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(data)
	return "sha256:" + hex.EncodeToString(sum[:]), nil
}

// ParseLock reads the lock file of the named recipe.
func ParseLock(name string, data []byte) (*LockFile, error) {
	file := LockFileName(name)
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var l LockFile
	if err := dec.Decode(&l); err != nil {
		return nil, &RecipeError{File: file, Err: err}
	}
	if l.Recipe != name {
		return nil, &RecipeError{File: file, Field: "recipe", Err: fmt.Errorf("is %q, want %q", l.Recipe, name)}
	}
	for arch, pkgs := range l.Architectures {
		for i, p := range pkgs {
			field := fmt.Sprintf("architectures.%s[%d]", arch, i)
			if p.Name == "" || p.Version == "" || p.Filename == "" || p.Size <= 0 {
				return nil, &RecipeError{File: file, Field: field, Err: fmt.Errorf("needs name, version, filename and size")}
			}
			if b, err := hex.DecodeString(p.SHA256); err != nil || len(b) != sha256.Size {
				return nil, &RecipeError{File: file, Field: field + ".sha256", Err: fmt.Errorf("%q is not a SHA256", p.SHA256)}
			}
		}
	}
	return &l, nil
}
