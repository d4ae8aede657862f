package main

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestCGIEnv(t *testing.T) {
	tests := []struct {
		name   string
		req    func() *http.Request
		want   []string
		absent []string
	}{
		{
			name: "headers, method, path and query",
			req: func() *http.Request {
				r := httptest.NewRequest(http.MethodPost, "/fn/sub?a=1&b=2", strings.NewReader("x"))
				r.Header.Set("Content-Type", "text/plain")
				r.Header.Add("X-Multi", "first")
				r.Header.Add("X-Multi", "second")
				return r
			},
			want: []string{
				"Http_Content_Type=text/plain", "Http_X_Multi=first",
				"Http_Method=POST", "Http_Path=/fn/sub", "Http_Query=a=1&b=2",
			},
			absent: []string{"Http_Transfer_Encoding"},
		},
		{
			name: "no query, chunked body",
			req: func() *http.Request {
				r := httptest.NewRequest(http.MethodPut, "/", nil)
				r.TransferEncoding = []string{"chunked"}
				return r
			},
			want:   []string{"Http_Method=PUT", "Http_Path=/", "Http_Transfer_Encoding=chunked"},
			absent: []string{"Http_Query"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := cgiEnv(tc.req())
			for _, w := range tc.want {
				if !slices.Contains(got, w) {
					t.Errorf("cgiEnv() = %q, want it to contain %q", got, w)
				}
			}
			for _, a := range tc.absent {
				if slices.ContainsFunc(got, func(s string) bool { return strings.HasPrefix(s, a+"=") }) {
					t.Errorf("cgiEnv() = %q, want no %s", got, a)
				}
			}
		})
	}
}

func TestFlushWriterHoldsOutputUntilStart(t *testing.T) {
	rec := httptest.NewRecorder()
	fw := &flushWriter{w: rec, rc: http.NewResponseController(rec)}
	if _, err := fw.Write([]byte("early ")); err != nil {
		t.Fatalf("Write() = %v, want nil", err)
	}
	if rec.Body.Len() != 0 {
		t.Fatalf("body before start = %q, want empty", rec.Body.String())
	}
	fw.start()
	if _, err := fw.Write([]byte("late")); err != nil {
		t.Fatalf("Write() = %v, want nil", err)
	}
	if diff := cmp.Diff("early late", rec.Body.String()); diff != "" {
		t.Errorf("body mismatch (-want +got):\n%s", diff)
	}
	if !rec.Flushed {
		t.Errorf("Flushed = false, want true")
	}
}
