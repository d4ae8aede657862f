// Package debian fetches and unpacks Debian packages without apt.
//
// A [Fetcher] talks HTTP to a Debian mirror. For locking, it reads a suite's
// InRelease, checks its OpenPGP signature against the Debian archive keyring,
// and takes the Packages index whose SHA256 the signed Release lists; [Merge]
// keeps the highest version of each package across suites, and
// [Index.Resolve] picks the packages a recipe asks for, with their
// Depends/Pre-Depends closure where asked. For building, [Fetcher.Download]
// fetches a .deb by its pool filename and verifies its size and SHA256
// against what the caller pinned, keeping verified files in a cache
// directory. [Extract] turns a .deb into layer entries the way distroless
// does: documentation dropped, the control stanza written to
// /var/lib/dpkg/status.d so image scanners see what is installed.
//
// The package knows nothing about any particular base image; the recipes
// live in runtime-images/bases.
package debian
