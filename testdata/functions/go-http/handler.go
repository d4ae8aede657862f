package function

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	handler "github.com/openfaas/templates-sdk/go-http"
)

// Handle echoes what golang-http gives a function: the method, query
// string, host, a header and the body. A POST is answered 201, and a query
// holding "fail" makes Handle return an error with a body and a header.
func Handle(req handler.Request) (handler.Response, error) {
	header := http.Header{"X-Kiln-Sample": []string{"go-http"}}
	if strings.Contains(req.QueryString, "fail") {
		return handler.Response{Body: []byte("failing as asked"), Header: header}, errors.New("asked to fail")
	}
	status := 0
	if req.Method == http.MethodPost {
		status = http.StatusCreated
	}
	ctx := "none"
	if req.Context() != nil && req.Context().Err() == nil {
		ctx = "live"
	}
	body := fmt.Sprintf("method=%s query=%s host=%s greeting=%s context=%s body=%s",
		req.Method, req.QueryString, req.Host, req.Header.Get("X-Greeting"), ctx, req.Body)
	return handler.Response{Body: []byte(body), StatusCode: status, Header: header}, nil
}
