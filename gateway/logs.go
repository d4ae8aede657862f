package gateway

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// logsKept is how many lines of each function /system/logs can give back.
const logsKept = 1000

// logLine is faas-provider's logs.Message.
type logLine struct {
	Name      string    `json:"name"`
	Namespace string    `json:"namespace"`
	Instance  string    `json:"instance"`
	Timestamp time.Time `json:"timestamp"`
	Text      string    `json:"text"`
}

// logBook keeps the last lines of each function and hands new ones to the
// followers of /system/logs?follow=true.
type logBook struct {
	mu        sync.Mutex
	lines     map[string][]logLine
	followers map[string]map[chan logLine]bool
}

func (b *logBook) add(l logLine) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.lines == nil {
		b.lines = map[string][]logLine{}
	}
	kept := append(b.lines[l.Name], l)
	if len(kept) > logsKept {
		kept = kept[len(kept)-logsKept:]
	}
	b.lines[l.Name] = kept
	for c := range b.followers[l.Name] {
		select {
		case c <- l:
		default: // a follower that does not keep up misses lines, not the function
		}
	}
}

// since returns the kept lines of name, with a follow channel when follow.
func (b *logBook) since(name string, follow bool) ([]logLine, chan logLine) {
	b.mu.Lock()
	defer b.mu.Unlock()
	lines := append([]logLine(nil), b.lines[name]...)
	if !follow {
		return lines, nil
	}
	c := make(chan logLine, 256)
	if b.followers == nil {
		b.followers = map[string]map[chan logLine]bool{}
	}
	if b.followers[name] == nil {
		b.followers[name] = map[chan logLine]bool{}
	}
	b.followers[name][c] = true
	return lines, c
}

func (b *logBook) unfollow(name string, c chan logLine) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.followers[name], c)
}

// logsHTTP answers /system/logs as faas-provider's logs handler does:
// newline-delimited JSON messages, the last tail of them (all kept when
// tail is absent or negative), those from since on, then, with
// follow=true, new ones until the caller goes.
func (g *Gateway) logsHTTP(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	name := q.Get("name")
	if name == "" {
		http.Error(w, "name is required", http.StatusBadRequest)
		return
	}
	tail := -1
	if s := q.Get("tail"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			http.Error(w, "tail "+strconv.Quote(s)+": want a number", http.StatusBadRequest)
			return
		}
		tail = n
	}
	var since time.Time
	if s := q.Get("since"); s != "" {
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			http.Error(w, "since "+strconv.Quote(s)+": want an RFC 3339 time", http.StatusBadRequest)
			return
		}
		since = t
	}
	follow, _ := strconv.ParseBool(q.Get("follow"))
	ns, instance := q.Get("namespace"), q.Get("instance")
	lines, c := g.logs.since(name, follow)
	if c != nil {
		defer g.logs.unfollow(name, c)
	}
	if len(lines) == 0 && g.lookup(name, ns) == nil {
		http.Error(w, "function "+name+" not found", http.StatusNotFound)
		return
	}
	match := func(l logLine) bool {
		return (ns == "" || l.Namespace == ns) && (instance == "" || l.Instance == instance) && !l.Timestamp.Before(since)
	}
	var kept []logLine
	for _, l := range lines {
		if match(l) {
			kept = append(kept, l)
		}
	}
	if tail >= 0 && len(kept) > tail {
		kept = kept[len(kept)-tail:]
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	enc := json.NewEncoder(w)
	for _, l := range kept {
		enc.Encode(l)
	}
	flusher, _ := w.(http.Flusher)
	if flusher != nil {
		flusher.Flush()
	}
	for c != nil {
		select {
		case l := <-c:
			if match(l) {
				enc.Encode(l)
				if flusher != nil {
					flusher.Flush()
				}
			}
		case <-r.Context().Done():
			return
		case <-g.ctx.Done():
			return
		}
	}
}

// logTap returns the function that records each line a function writes.
func (g *Gateway) logTap(name, namespace, instance string) func(string) {
	return func(text string) {
		g.logs.add(logLine{Name: name, Namespace: namespace, Instance: instance, Timestamp: time.Now().UTC(), Text: strings.TrimSuffix(text, "\n")})
	}
}
