// Package golang builds Go functions: the golang-middleware and golang-http
// handler layouts of OpenFaaS, served by a main program kiln supplies, and
// lang "go", which is either a plain Go main package or a function of
// OpenFaaS's classic go template (package function, Handle(req []byte)
// string), wrapped in a main that kiln supplies and run by the watchdog
// once per request. Plan tells the two apart by the package clause.
//
// golang-http functions import github.com/openfaas/templates-sdk/go-http;
// kiln brings its own implementation of that package (sdk/handler) and
// puts it in the build's module graph with a replace directive, since the
// Go module proxy serves kiln no github.com/openfaas module.
//
// The binary is built with the host's Go toolchain, CGO off, -trimpath, no
// VCS stamping and stripped, so the same source gives the same bytes on any
// machine with the same Go release; the user's Go build cache is reused.
// The user's folder is never written to: main programs, go.work files and
// any go.mod the build needs go to the build's scratch folder.
package golang
