// Package packs is the registry of kiln's language packs. It makes every
// pack from the settings the caller holds (environment, cache folder, the
// Debian of the runtime bases), and lists the lang values the packs
// declare: the names `kiln build --lang` lists, the fprocess deploy falls
// back on, and the templates `kiln new` writes.
//
// Adding a language is adding its pack (languages/<name>, with its Langs
// and scaffold/ folder), its runtime base recipe, and one entry here.
package packs
