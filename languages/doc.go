// Package languages is the contract between the builder and the language
// packs in its sub-packages: a pack looks at a function's source directory
// and plans the layers that build it, ordered from the rarely changing to
// the changed-on-every-edit, so that an edit rebuilds and pushes only the
// top layer. A pack never talks to a registry and never imports
// runtime-images: what it reads of Debian comes through the Debian
// interface, which the wiring fills. Each pack also declares its lang
// values (Lang: fprocess, `kiln new` templates), which the registry in
// languages/packs lists for the CLI and deploy.
package languages
