package function

import (
	"net/http/httptest"
	"strings"
	"testing"
)

func TestHandle(t *testing.T) {
	rec := httptest.NewRecorder()
	Handle(rec, httptest.NewRequest("POST", "/", strings.NewReader("hi")))
	if got, want := rec.Body.String(), "Hello from kiln, you said: hi"; got != want {
		t.Errorf("Handle() body = %q, want %q", got, want)
	}
}
