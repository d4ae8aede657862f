// Package bases holds kiln's runtime base recipes and turns them into
// image layers.
//
// A recipe (<name>.yaml in this directory, embedded in the binary) names
// the Debian packages a base is made of, per architecture; its lock
// (<name>.lock.json) pins each package's version, pool filename, size and
// SHA256 for every architecture. [Lock] refreshes a lock from the mirror's
// signed indexes; [Assemble] turns a recipe and its lock into cacheable
// layer steps and an image config, distroless-style: no shell, no package
// manager, a CA bundle generated from ca-certificates, /etc/passwd and
// /etc/group with the function's non-root user, /tmp and the function's
// folder, as the image contract (internal/contract) says.
//
// One base is not distroless: the debian recipe is a bookworm system to
// build on (FROM in a Dockerfile), with a shell. Its recipe merges /usr as
// debootstrap does and asks for the configure hooks, which do what the
// maintainer scripts of the packages kiln knows would do on a first
// install (configure.go), since kiln never runs them: it only unpacks.
//
// Assembling needs no index and no keyring: the lock is the only source
// of what goes into a base, so a base builds the same on any machine, at
// any time, for as long as the mirror keeps the files.
package bases
