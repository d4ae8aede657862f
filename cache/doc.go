// Package cache is kiln's local content-addressed store of built layers.
//
// An entry maps a step's input key (see layers.Step) to the descriptor of
// the layer those inputs produce, and the descriptor to its compressed blob:
//
//	<dir>/layers/v1/keys/<key>.json         -> {digest, diffID, size, name}
//	<dir>/layers/v1/blobs/sha256/<digest>   -> gzip-compressed tar
//
// Every file appears by rename from a temporary file in the same directory,
// so a reader, another kiln process or a crash never sees half an entry.
// A blob is hashed again on every Get; one that does not match its digest is
// deleted with its key and reported as a miss, so it is rebuilt, never pushed.
package cache
