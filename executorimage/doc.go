// Package executorimage builds the images `kiln executor` runs in: kiln
// itself at /kaniko/executor, where kaniko's Job manifests call it, and the
// toolchains the language packs run, one image per language plus one with
// all of them.
//
// Every input is pinned in images.lock.json, made from images.yaml by
// [Refresh]: the Go toolchain module's zip (its SHA256 and its go.sum
// hash, checked against the checksum database when locking), the Node
// build and npm from the npm registry (their integrity), and the Debian
// packages of git, the JDK with Maven and Python (resolved with their
// dependencies on top of runtime-images' debian base, pinned by SHA256).
// Building reads only the lock, so that the same lock and the same kiln
// binary give the same image digests on any machine.
//
// The images share their layers: the debian base, git, each toolchain
// and kiln are one layer each, so that a registry holding every image
// stores each toolchain once.
package executorimage
