package handler

import (
	"context"
	"net/http"
)

// Request is one HTTP request to the function.
type Request struct {
	// Body is the whole request body, empty when there is none.
	Body []byte
	// Header holds the request's headers.
	Header http.Header
	// QueryString is the URL's query without the "?", as sent.
	QueryString string
	// Method is the HTTP method.
	Method string
	// Host is the host the request was sent to.
	Host string

	ctx context.Context
}

// Context returns the request's context, which is done when the client
// goes away or the server shuts down; context.Background() when none was
// set.
func (r *Request) Context() context.Context {
	if r.ctx == nil {
		return context.Background()
	}
	return r.ctx
}

// WithContext sets the request's context. Like http.Request.WithContext it
// panics on a nil context, a programming error.
func (r *Request) WithContext(ctx context.Context) {
	if ctx == nil {
		panic("handler: WithContext with a nil context")
	}
	r.ctx = ctx
}

// Response is the function's answer.
type Response struct {
	// Body is written back as the response body.
	Body []byte
	// StatusCode is the HTTP status; 0 means 200 OK.
	StatusCode int
	// Header holds headers to add to the response.
	Header http.Header
}

// FunctionHandler is a function's Handle as a method.
type FunctionHandler interface {
	Handle(req Request) (Response, error)
}
