package debian

import (
	"fmt"
	"strings"
)

// NotFoundError reports a package that none of the indexes searched holds.
type NotFoundError struct {
	Package string
	Suites  []string
	Arch    string
}

func (e *NotFoundError) Error() string {
	return fmt.Sprintf("package %s is not in %s for %s", e.Package, strings.Join(e.Suites, ", "), e.Arch)
}

// UnsatisfiableError reports a dependency that no package in the indexes
// satisfies.
type UnsatisfiableError struct {
	// Package is the package that has the dependency.
	Package string
	// Relation is the dependency as written, "debconf (>= 0.5) | debconf-2.0".
	Relation string
	Suites   []string
	Arch     string
}

func (e *UnsatisfiableError) Error() string {
	return fmt.Sprintf("%s depends on %s, which nothing in %s for %s satisfies (exclude it in the recipe if it is not needed)",
		e.Package, e.Relation, strings.Join(e.Suites, ", "), e.Arch)
}

// ChecksumError reports a download whose size or SHA256 is not the one
// pinned. Nothing is kept in the cache when it happens.
type ChecksumError struct {
	// What names the download: a package and version, or an index.
	What string
	URL  string
	// Want and Got are "<size> bytes, sha256 <hex>".
	Want, Got string
}

func (e *ChecksumError) Error() string {
	return fmt.Sprintf("%s: got %s, want %s", e.URL, e.Got, e.Want)
}

// SignatureError reports a Release file whose signature does not verify
// against the keyring.
type SignatureError struct {
	URL     string
	Keyring string
	Err     error
}

func (e *SignatureError) Error() string {
	return fmt.Sprintf("verifying the signature of %s with %s: %v", e.URL, e.Keyring, e.Err)
}

func (e *SignatureError) Unwrap() error { return e.Err }

// KeyringError reports a keyring that cannot be read.
type KeyringError struct {
	Path string
	Err  error
}

func (e *KeyringError) Error() string {
	return fmt.Sprintf("reading the Debian archive keyring %s: %v (install the debian-archive-keyring package, or give a keyring file: debian.WithKeyring, kiln base lock --keyring FILE)", e.Path, e.Err)
}

func (e *KeyringError) Unwrap() error { return e.Err }

// HTTPError reports a response with a status other than 200.
type HTTPError struct {
	URL        string
	StatusCode int
	Status     string
}

func (e *HTTPError) Error() string {
	return fmt.Sprintf("GET %s: %s", e.URL, e.Status)
}
