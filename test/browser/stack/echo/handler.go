// Package function is the browser tests' function: it prints a line per
// call, which the console's log view must show, and answers with what it
// got.
package function

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"time"
)

// Handle logs the call, waits ?sleep=MS, answers ?status=CODE (200 by
// default) with the method, path and body.
func Handle(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	fmt.Fprintf(os.Stderr, "echo-call %s %s %q\n", r.Method, r.URL.Path, r.Header.Get("X-Test-Mark"))
	if ms, err := strconv.Atoi(r.URL.Query().Get("sleep")); err == nil {
		time.Sleep(time.Duration(ms) * time.Millisecond)
	}
	code := http.StatusOK
	if c, err := strconv.Atoi(r.URL.Query().Get("status")); err == nil {
		code = c
	}
	w.Header().Set("X-Echo", os.Getenv("greeting"))
	w.WriteHeader(code)
	fmt.Fprintf(w, "%s %s %s", r.Method, r.URL.Path, body)
}
