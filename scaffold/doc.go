// Package scaffold writes a new function for `kiln new`: a handler folder
// from the templates of its language and an entry in the stack file. The
// templates are the packs' (languages.Lang.Scaffold, listed by
// languages/packs): files named NAME.tmpl, Go text templates over Data.
package scaffold
