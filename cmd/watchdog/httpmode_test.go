package main

import (
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestRequestTimeout(t *testing.T) {
	tests := []struct {
		name   string
		exec   time.Duration
		header string
		want   time.Duration
	}{
		{"no header", 10 * time.Second, "", 10 * time.Second},
		{"shorter header wins", 10 * time.Second, "2s", 2 * time.Second},
		{"integer seconds", 10 * time.Second, "3", 3 * time.Second},
		{"longer header ignored", 10 * time.Second, "20s", 10 * time.Second},
		{"equal header ignored", 10 * time.Second, "10s", 10 * time.Second},
		{"unparsable header ignored", 10 * time.Second, "soon", 10 * time.Second},
		{"zero header ignored", 10 * time.Second, "0s", 10 * time.Second},
		{"exec_timeout off stays off", 0, "2s", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := requestTimeout(tc.exec, tc.header); got != tc.want {
				t.Errorf("requestTimeout(%v, %q) = %v, want %v", tc.exec, tc.header, got, tc.want)
			}
		})
	}
}

func TestEndToEndHeaders(t *testing.T) {
	tests := []struct {
		name string
		in   http.Header
		want http.Header
	}{
		{
			name: "end-to-end headers kept",
			in:   http.Header{"Content-Type": {"text/plain"}, "X-Call-Id": {"1"}, "Set-Cookie": {"a=1", "b=2"}},
			want: http.Header{"Content-Type": {"text/plain"}, "X-Call-Id": {"1"}, "Set-Cookie": {"a=1", "b=2"}},
		},
		{
			name: "hop-by-hop headers dropped",
			in: http.Header{"Connection": {"keep-alive"}, "Keep-Alive": {"timeout=5"}, "Upgrade": {"h2c"},
				"Te": {"trailers"}, "Proxy-Connection": {"keep-alive"}, "Accept": {"*/*"}},
			want: http.Header{"Accept": {"*/*"}},
		},
		{
			name: "headers named by Connection dropped",
			in:   http.Header{"Connection": {"X-Secret, x-other"}, "X-Secret": {"s"}, "X-Other": {"o"}, "X-Kept": {"k"}},
			want: http.Header{"X-Kept": {"k"}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := endToEndHeaders(tc.in)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("endToEndHeaders(%v) mismatch (-want +got):\n%s", tc.in, diff)
			}
		})
	}
}
