// Package cacherepo keeps kiln's step layers in a registry repository (the
// --cache-repo REPO flag), so that a build on another machine, or in a
// fresh pod, reuses them. Cache decorates the local store: Get reads the
// local store, then the repository, and keeps what the repository had in
// the local store; Put stores locally, then pushes in the background;
// Flush waits for the pushes. The repository never fails a build: a
// repository that cannot be read is a miss, one that cannot be written (a
// read-only cache) only loses the entry, and Flush returns both as
// warnings.
//
// It sits beside the local store, not in the Dockerfile engine, because
// the entries are those of any step keyed as cache.Store keys them: the
// Dockerfile engine's, the language builder's (bases, watchdog, runtimes,
// dependencies, jlink runtimes, handlers) and the in-cluster executor's.
//
// Tree does the same for the directories the language packs keep beside
// the layers (cache.Store.Tree: installed node_modules, Java's resolved
// jars, classes and module lists, Go's module and build caches), which a
// fresh machine would otherwise make again by running npm, Maven, javac,
// jdeps or the go command even when every layer is in the repository:
// the Java layers' keys are made from those outputs, the Node handler's
// check reads the installed modules, and an edited Go handler compiles
// against the modules. A tree is an entry like a layer's, whose key is
// TreeKey(kind, key) and whose layer holds the directory's files at its
// root.
//
// # Format (version 1)
//
// The entry for a step key K (a sha256 v1.Hash) is an image tagged with
// K's hex in REPO, as kaniko names its --cache-repo entries:
//
//	REPO:<64 hex digits of K>
//
// It is an OCI image manifest (application/vnd.oci.image.manifest.v1+json)
// with:
//
//   - one layer: the step's layer, a gzip-compressed tar
//     (application/vnd.oci.image.layer.v1.tar+gzip), the very bytes the
//     builds that use it push;
//   - an OCI image config (application/vnd.oci.image.config.v1+json)
//     whose rootfs.diff_ids holds the layer's diff ID, whose one history
//     entry's created_by is the step's name, and whose created times are
//     the Unix epoch, so the same layer always makes the same manifest and
//     a second push of it uploads nothing;
//   - the manifest annotations dev.kiln.cache.key, K as "sha256:<hex>",
//     and dev.kiln.cache.step, the step's name (as `kiln cache ls` shows
//     it), or "tree KIND/KEY" for a tree.
//
// An image config rather than an artifact type keeps the entries in
// registries that accept images only. A reader takes an entry only when
// its key annotation is the key it asked for (a tag copied over another is
// a miss) and it has exactly one gzip layer and one diff ID; the layer's
// bytes are checked against its digest, size and diff ID before use. A
// writer may overwrite any tag: an entry is a pure function of the key's
// inputs, so two writers of one key write the same layer.
package cacherepo
