// Package golang builds Go functions: the golang-middleware handler layout
// of OpenFaaS, served by a main program kiln supplies, and plain Go main
// packages (lang "go").
//
// The binary is built with the host's Go toolchain, CGO off, -trimpath, no
// VCS stamping and stripped, so the same source gives the same bytes on any
// machine with the same Go release; the user's Go build cache is reused.
package golang
