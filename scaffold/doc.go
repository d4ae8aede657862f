// Package scaffold writes a new function for `kiln new`: a handler folder
// from the templates of its language and an entry in the stack file. Each
// language is a folder under templates/ whose files (named NAME.tmpl) are
// Go text templates over Data; adding a language is adding a folder.
package scaffold
