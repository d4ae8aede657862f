// Package registrytest runs the CNCF distribution registry (the
// docker-registry binary of the Debian package of that name) on a free
// loopback port, for the end-to-end tests and the benchmark, and reads its
// access log to tell what clients did: which blobs they uploaded, which
// manifests they put.
//
// A typical use:
//
//	reg, err := registrytest.Start(ctx, t.TempDir())
//	defer reg.Close()
//	mark := reg.Mark()
//	// ... push to reg.Host ...
//	reqs, err := reg.Since(ctx, mark)
//	uploads := registrytest.BlobUploads(reqs)
//
// Everything is spoken over plain HTTP to 127.0.0.1.
package registrytest
