// Package debiantest builds Debian packages and serves a signed Debian
// mirror over httptest, for tests of kiln's Debian handling that must not
// reach the real archive.
//
// A [Mirror] holds suites with their packages, serves dists/<suite>/
// (InRelease, Release, Release.gpg, Packages indexes) and pool/ like
// deb.debian.org, signs its Release files with a key made for the test,
// and counts requests; tests can replace a file's bytes or make the next
// requests for a path fail.
package debiantest
