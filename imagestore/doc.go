// Package imagestore owns kiln's local image store and finds images by
// name: in that store, in an OCI layout or tarball the user names, or in a
// registry.
//
// The local store is an OCI image layout under kiln's cache directory where
// `kiln build` without --push puts images, each under its reference name,
// and where `kiln run`, `kiln up --local`, `kiln dev`, `kiln deploy` and
// `kiln push` look for them:
//
//	s := imagestore.Open(cacheDir)
//	img, err := s.Find(ctx, "hello:dev")                          // local store, else registry
//	img, err = s.Find(ctx, "ghcr.io/me/hello", imagestore.RegistryFirst())
//	img, err = imagestore.Resolve(ctx, "oci:./out")               // no local store
package imagestore
