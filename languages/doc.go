// Package languages is the contract between the builder and the language
// packs in its sub-packages: a pack looks at a function's source directory
// and plans the layers that build it, ordered from the rarely changing to
// the changed-on-every-edit, so that an edit rebuilds and pushes only the
// top layer. A pack never talks to a registry and never imports
// runtime-images: what it reads of Debian comes through the Debian
// interface, which the wiring fills. Each pack also declares its lang
// values (Lang: fprocess, `kiln new` templates), which the registry in
// languages/packs lists for the CLI and deploy.
//
// A pack reads the handler folder through HandlerFiles and ReadManifest,
// which refuse links out of it, and files outside it only as a manifest
// names them (Name: go.mod's replace, package.json's file:, pip's -r): it
// stages them with the folder (Stage) so that the tools read exactly what
// the layer's key covers.
package languages
