// Command hello is a plain Go program serving HTTP on the port the watchdog
// proxies to.
package main

import (
	"fmt"
	"log"
	"net/http"
	"os"
)

func main() {
	port := os.Getenv("http_port")
	if port == "" {
		port = "8082"
	}
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "plain main says hi on %s\n", r.URL.Path)
	})
	log.Fatal(http.ListenAndServe("127.0.0.1:"+port, nil))
}
