package gateway

import (
	"context"
	"net/http"
)

// WithUI serves the handler ui makes for the gateway under /ui/, behind
// the login, and redirects / there, as OpenFaaS's gateway does. Default:
// /ui/ answers 404 (after the login).
func WithUI(ui func(*Gateway) http.Handler) Option { return func(g *Gateway) { g.uiFor = ui } }

// OpenAPI returns the OpenAPI document of every function, as GET
// /system/openapi.json serves it (WithOpenAPI), or an error wrapping
// ErrNotFound when the gateway has none: the UI renders it.
func (g *Gateway) OpenAPI(ctx context.Context) ([]byte, error) {
	if g.openapi == nil {
		return nil, ErrNotFound
	}
	return g.openapi(ctx, "")
}
