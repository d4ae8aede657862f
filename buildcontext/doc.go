// Package buildcontext keeps a build context (a function's source tree,
// or a Dockerfile's context) in a registry as an OCI artifact, so that a
// build in a pod gets its source without a bucket or a shared volume:
// `kiln job` packs and pushes it, `kiln executor --context
// oci://REGISTRY/REPO@sha256:…` fetches it.
//
// The format, version 1:
//
//   - an OCI image manifest (application/vnd.oci.image.manifest.v1+json)
//     whose artifactType and config media type are MediaType
//     (application/vnd.kiln.context.v1+json); the config is the JSON
//     object {"version":1};
//   - one layer, application/vnd.oci.image.layer.v1.tar+gzip: the context
//     tree, paths relative to its root, folders before what they hold, in
//     byte order of their paths. Entries are folders, regular files and
//     symbolic links only; owner 0:0, modification time 0 (1970-01-01),
//     the permission bits kept. So the same tree always packs to the same
//     digest, wherever and whenever it is packed.
//
// Pack leaves out what the context's .dockerignore names (never the
// .dockerignore itself nor Dockerfiles, as docker's CLI keeps them), the
// .git folder, and the files that hold credentials and that a build must
// get another way (kiln job mounts them from Secrets for the dependency
// install only): .npmrc, .pypirc, pip.conf, .netrc, .git-credentials and
// .docker/config.json, at any depth. Maven's settings.xml stays: it often
// holds only mirrors, and a project that keeps passwords in it lists it in
// .dockerignore. Private keys (*.pem, *.key) stay too: a context may need
// a CA certificate, and kiln cannot tell one from a key by its name.
//
// Extract (and Fetch) refuse an entry whose path leaves the destination
// ("..", an absolute path), a link whose target leaves it, and any entry
// other than a folder, a regular file, a symbolic link or a hard link to
// an earlier entry (tar:// contexts made by tar may hold those); they write
// through an os.Root, so no entry lands outside the destination, even
// through a link an earlier entry made.
package buildcontext
