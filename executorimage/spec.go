package executorimage

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/kiln-build/kiln/runtime-images/bases"
)

// SpecFile and LockFile are the names of the spec and its lock, which
// live in this package's directory and are compiled into kiln.
const (
	SpecFile = "images.yaml"
	LockFile = "images.lock.json"
)

var (
	//go:embed images.yaml
	embeddedSpec []byte
	//go:embed images.lock.json
	embeddedLock []byte
)

// DebianBase is the runtime base under every executor image.
const DebianBase = "debian"

// Spec says what the executor images are made of.
type Spec struct {
	// Architectures are the Debian architectures ("amd64", "arm64") the
	// lock pins inputs for.
	Architectures []string `yaml:"architectures"`
	// Go is the Go toolchain's version: "1.26.8".
	Go string `yaml:"go"`
	// Node and NPM are the versions of the node-linux-* package and of
	// npm on the npm registry.
	Node string `yaml:"node"`
	NPM  string `yaml:"npm"`
	// Debian maps a group (a layer) to the Debian packages it installs
	// with their dependencies.
	Debian map[string][]string `yaml:"debian"`
}

// Lock pins every input of the images.
type Lock struct {
	// Inputs digests the spec the lock was made from.
	Inputs string `json:"inputs"`
	// Go maps a Debian architecture to its toolchain module zip.
	Go map[string]GoToolchain `json:"go"`
	// Node maps a Debian architecture to its Node build.
	Node map[string]NPMPackage `json:"node"`
	// NPM is npm itself, the same for every architecture.
	NPM NPMPackage `json:"npm"`
	// DebianBaseLock is the digest of the debian base's lock the groups
	// were resolved on top of.
	DebianBaseLock string `json:"debian_base_lock"`
	// Debian maps a group, then an architecture, to its pinned packages,
	// sorted by name.
	Debian map[string]map[string][]bases.LockedPackage `json:"debian"`
}

// GoToolchain pins one golang.org/toolchain module zip.
type GoToolchain struct {
	// Version is the module version: "v0.0.1-go1.26.8.linux-amd64".
	Version string `json:"version"`
	// Hash is the go.sum hash of the module's files, as the checksum
	// database holds it: "h1:…".
	Hash string `json:"hash"`
	// SHA256 and Size are the zip's, checked on every download.
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
}

// NPMPackage pins one package version of the npm registry.
type NPMPackage struct {
	Package string `json:"package"`
	Version string `json:"version"`
	// Integrity is the registry's "sha512-<base64>".
	Integrity string `json:"integrity"`
}

// SpecError reports a mistake in the spec or its lock.
type SpecError struct {
	// File is images.yaml or images.lock.json; Field locates the mistake.
	File, Field string
	Err         error
}

func (e *SpecError) Error() string {
	if e.Field == "" {
		return fmt.Sprintf("%s: %v", e.File, e.Err)
	}
	return fmt.Sprintf("%s: %s: %v", e.File, e.Field, e.Err)
}

func (e *SpecError) Unwrap() error { return e.Err }

// StaleLockError reports a lock that does not fit its spec or the debian
// base it was made on.
type StaleLockError struct{ Reason string }

func (e *StaleLockError) Error() string {
	return fmt.Sprintf("%s %s: run kiln executor image lock", LockFile, e.Reason)
}

// BuiltinSpec returns the spec compiled into kiln.
func BuiltinSpec() (*Spec, error) { return ParseSpec(embeddedSpec) }

// BuiltinLock returns the lock compiled into kiln.
func BuiltinLock() (*Lock, error) { return ParseLock(embeddedLock) }

// ParseSpec reads images.yaml. Unknown fields are mistakes.
func ParseSpec(data []byte) (*Spec, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var s Spec
	if err := dec.Decode(&s); err != nil {
		return nil, &SpecError{File: SpecFile, Err: err}
	}
	bad := func(field, format string, args ...any) error {
		return &SpecError{File: SpecFile, Field: field, Err: fmt.Errorf(format, args...)}
	}
	if len(s.Architectures) == 0 {
		return nil, bad("architectures", "none given")
	}
	for i, a := range s.Architectures {
		if _, err := nodeArch(a); err != nil {
			return nil, bad(fmt.Sprintf("architectures[%d]", i), "%v", err)
		}
	}
	for field, v := range map[string]string{"go": s.Go, "node": s.Node, "npm": s.NPM} {
		if v == "" || strings.ContainsAny(v, "/ @") {
			return nil, bad(field, "%q is not a version", v)
		}
	}
	for _, g := range slices.Sorted(func(yield func(string) bool) {
		for g := range s.Debian {
			if !yield(g) {
				return
			}
		}
	}) {
		if !slices.Contains(Groups, g) {
			return nil, bad("debian."+g, "unknown group (known: %s)", strings.Join(Groups, ", "))
		}
		if len(s.Debian[g]) == 0 {
			return nil, bad("debian."+g, "no packages")
		}
	}
	return &s, nil
}

// inputs digests the spec, so that a lock made from another is known.
func (s *Spec) inputs() string {
	data, _ := json.Marshal(s)
	sum := sha256.Sum256(data)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// ParseLock reads images.lock.json.
func ParseLock(data []byte) (*Lock, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var l Lock
	if err := dec.Decode(&l); err != nil {
		return nil, &SpecError{File: LockFile, Err: err}
	}
	bad := func(field, format string, args ...any) error {
		return &SpecError{File: LockFile, Field: field, Err: fmt.Errorf(format, args...)}
	}
	for arch, t := range l.Go {
		if _, err := hex.DecodeString(t.SHA256); err != nil || len(t.SHA256) != 64 || t.Size <= 0 {
			return nil, bad("go."+arch, "needs a sha256 and a size")
		}
		if !strings.HasPrefix(t.Hash, "h1:") {
			return nil, bad("go."+arch+".hash", "%q is not a go.sum hash (h1:…)", t.Hash)
		}
	}
	for arch, p := range l.Node {
		if _, err := p.sha512(); err != nil {
			return nil, bad("node."+arch+".integrity", "%v", err)
		}
	}
	if _, err := l.NPM.sha512(); err != nil {
		return nil, bad("npm.integrity", "%v", err)
	}
	return &l, nil
}

// Marshal returns the lock as the file holds it: indented JSON, packages
// sorted by name, so that a diff shows only what changed.
func (l *Lock) Marshal() ([]byte, error) {
	for _, archs := range l.Debian {
		for _, pkgs := range archs {
			sort.Slice(pkgs, func(i, j int) bool { return pkgs[i].Name < pkgs[j].Name })
		}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(l); err != nil {
		return nil, fmt.Errorf("encoding %s: %w", LockFile, err)
	}
	return buf.Bytes(), nil
}

// Digest returns the SHA256 of the lock's file form.
func (l *Lock) Digest() (string, error) {
	data, err := l.Marshal()
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(data)
	return "sha256:" + hex.EncodeToString(sum[:]), nil
}

// check returns a *StaleLockError unless the lock was made from s, on the
// debian base lock baseLock, and pins everything arch needs.
func (l *Lock) check(s *Spec, baseLock, arch string) error {
	switch {
	case l.Inputs != s.inputs():
		return &StaleLockError{Reason: "was made from another " + SpecFile}
	case l.DebianBaseLock != baseLock:
		return &StaleLockError{Reason: "was made on another lock of runtime base " + DebianBase}
	}
	if _, ok := l.Go[arch]; !ok {
		return &StaleLockError{Reason: "pins no Go toolchain for " + arch}
	}
	if _, ok := l.Node[arch]; !ok {
		return &StaleLockError{Reason: "pins no Node for " + arch}
	}
	for g := range s.Debian {
		if _, ok := l.Debian[g][arch]; !ok {
			return &StaleLockError{Reason: fmt.Sprintf("pins no %s packages for %s", g, arch)}
		}
	}
	return nil
}
