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
// The images trust Debian's CA certificates. Behind a company's proxy or
// mirror with a CA of its own, [WithLocalCAs] (`kiln executor image build
// --ca-certificates FILE`) adds its certificates as an administrator's
// /usr/local/share/ca-certificates would: to the bundle that Go, OpenSSL,
// pip and Node (NODE_EXTRA_CA_CERTS) read and to the JDK's trust store,
// which Maven reads. A Job may instead mount PEM files at
// /kaniko/ssl/certs, as kaniko's manifests do; only Go programs, kiln
// among them, read that folder.
//
// The images share their layers: the debian base, git, each toolchain
// and kiln are one layer each, so that a registry holding every image
// stores each toolchain once.
package executorimage
