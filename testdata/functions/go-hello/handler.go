package function

import (
	"fmt"
	"io"
	"net/http"
)

// Handle answers with a greeting and echoes the request body.
func Handle(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	w.Header().Set("X-Kiln-Sample", "go-hello")
	if len(body) > 0 {
		fmt.Fprintf(w, "Hello from kiln, you said: %s", body)
		return
	}
	fmt.Fprintf(w, "Hello from kiln")
}
