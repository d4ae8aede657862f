// Package layers turns sets of files into deterministic, compressed OCI
// layers.
//
// A layer's bytes depend only on its files: entries are sorted, parent
// directories are present, timestamps come from one epoch (SOURCE_DATE_EPOCH
// or 0), owners are 0:0 unless a file says otherwise, and no host data (user
// names, access times, device numbers) leaks in. The same files therefore give
// the same digest on every machine.
//
// Compression happens once, in one pass that also computes the diffID and the
// digest, and the result is written to a file; [FromCompressedFile] turns such
// a file back into a v1.Layer without reading it.
package layers
