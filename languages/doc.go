// Package languages is the contract between the builder and the language
// packs in its sub-packages: a pack looks at a function's source directory
// and plans the layers that build it, ordered from the rarely changing to
// the changed-on-every-edit, so that an edit rebuilds and pushes only the
// top layer. A pack never talks to a registry.
package languages
