// Command localserver is the demo's stand-in for the developer's work in progress: an HTTP
// server on :8080 that says it runs locally and logs each request it gets on stderr.
package main

import (
	"fmt"
	"log"
	"net/http"
	"os"
)

func main() {
	host, _ := os.Hostname()
	log.SetFlags(0)
	log.SetPrefix("localserver: ")
	err := http.ListenAndServe(":8080", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		log.Printf("got %s %s", r.Method, r.URL.Path)
		fmt.Fprintf(w, "hello from the local server on %s: you asked for %s\n", host, r.URL.Path)
	}))
	log.Fatal(err)
}
