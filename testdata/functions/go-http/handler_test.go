package function

import (
	"net/http"
	"testing"

	handler "github.com/openfaas/templates-sdk/go-http"
)

func TestHandle(t *testing.T) {
	res, err := Handle(handler.Request{Method: http.MethodPost, Body: []byte("hi"), Header: http.Header{}})
	if err != nil {
		t.Fatalf("Handle() = %v", err)
	}
	if res.StatusCode != http.StatusCreated {
		t.Errorf("Handle(POST) status = %d, want %d", res.StatusCode, http.StatusCreated)
	}
}
