// Command net is a plain Go program that shows what a function sees of the
// network: the tests run it to check a run's network namespace.
//
//	/whoami          the RUN_ID environment variable
//	/lookup?host=H   the addresses H resolves to, space-separated
//	/get?url=U       the body of a GET of U
//	/resolv          the function's /etc/resolv.conf
package main

import (
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"strings"
	"time"
)

func main() {
	port := os.Getenv("http_port")
	if port == "" {
		port = "8082"
	}
	http.HandleFunc("/whoami", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, os.Getenv("RUN_ID"))
	})
	http.HandleFunc("/lookup", func(w http.ResponseWriter, r *http.Request) {
		addrs, err := net.LookupHost(r.URL.Query().Get("host"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		fmt.Fprintln(w, strings.Join(addrs, " "))
	})
	http.HandleFunc("/get", func(w http.ResponseWriter, r *http.Request) {
		client := &http.Client{Timeout: 5 * time.Second}
		resp, err := client.Get(r.URL.Query().Get("url"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		_, _ = io.Copy(w, resp.Body)
	})
	http.HandleFunc("/resolv", func(w http.ResponseWriter, r *http.Request) {
		b, err := os.ReadFile("/etc/resolv.conf")
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		_, _ = w.Write(b)
	})
	log.Fatal(http.ListenAndServe("127.0.0.1:"+port, nil))
}
