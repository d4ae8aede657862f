// Package builder turns a function into an image and publishes it.
//
// Build asks the function's language pack for a plan, resolves every layer
// step through the cache (building only the misses, in parallel), and
// stacks runtime base, watchdog and the pack's layers into a v1.Image.
// Publishers then send that image to a registry, an OCI layout or a
// docker-loadable tarball. The builder knows no language and the publishers
// know no function.
package builder
