// Package cache is kiln's local store: one directory that holds entries of
// several kinds (see Kind), which several kiln processes share.
//
//   - Layers: a step's input key names the descriptor of the layer those
//     inputs produce, and the descriptor its compressed blob (Get, Put,
//     List). A blob is hashed again on every Get; one that does not match
//     its digest is deleted with its key and reported as a miss, so it is
//     rebuilt, never pushed.
//   - Directory entries (Tree): Java outputs, node_modules installs,
//     unpacked images.
//   - Verified file entries (File): Node runtimes, Debian packages and
//     indexes, named and checked by their digest on every use.
//   - The local image store (an OCI layout), the local gateway's secrets and
//     temporary files, which the store measures and prunes but does not
//     write itself.
//
// Every entry is written in the store's temporary folder and renamed into
// place once whole (and synced, but for volatile kinds), so a reader,
// another kiln process or a crash never sees half an entry. Using an entry
// stamps its last use; a lease holds it, through an advisory lock, against
// Prune and Clear while a process uses it (a running function holds its
// unpacked image). Usage measures every kind, so that its total is the
// size of the directory as `du -sb` gives it; Prune removes what was
// last used before a cutoff, of every kind; Clear removes everything.
package cache
