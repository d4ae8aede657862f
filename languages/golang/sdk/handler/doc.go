// Package handler is kiln's own implementation of the request and response
// types of github.com/openfaas/templates-sdk/go-http, the package OpenFaaS's
// golang-http template gives its functions, written from the template's
// contract: a function's
//
//	func Handle(req handler.Request) (handler.Response, error)
//
// gets the request's body, headers, query string, method, host and context,
// and answers with a body, a status and headers.
//
// The Go pack embeds these files and puts them in the build's module graph
// under the upstream import path, with a replace directive in the go.work
// of the build's scratch folder, as the template's own vendor folder does:
// the Go module proxy serves no github.com/openfaas module to kiln's builds.
// Nothing in kiln imports this package; it is compiled here so that vet,
// staticcheck and its tests keep it sound.
package handler
