package gateway

import (
	"maps"
	"sync"
	"time"
)

// BuildInfo is how a function's running image was built, as kiln knows
// it from source to digest: the gateway itself knows images only by name.
type BuildInfo struct {
	// Image is the reference deployed, Digest the manifest's digest.
	Image  string `json:"image"`
	Digest string `json:"digest"`
	// Layers are the image's layers, base first.
	Layers []BuildLayer `json:"layers"`
	// At is when the build ended, Took how long it took.
	At   time.Time     `json:"at"`
	Took time.Duration `json:"took"`
}

// BuildLayer is one layer of a built image.
type BuildLayer struct {
	// Name is the builder's name for the layer, "" when it has none (a
	// Dockerfile's layer, a base image's).
	Name   string `json:"name,omitempty"`
	Digest string `json:"digest"`
	Size   int64  `json:"size"`
	// Rebuilt says the last build made this layer, not the cache.
	Rebuilt bool `json:"rebuilt"`
	// Took is how long the layer took to build, 0 when cached.
	Took time.Duration `json:"took,omitempty"`
}

// Build event kinds, as kiln dev goes through them.
const (
	BuildStarted = "started"
	BuildFailed  = "failed"
	BuildDone    = "built"
	BuildLive    = "live"
)

// BuildEvent is a step of a function's build: started, failed (Err says
// why), built (Build says what), live (the new image serves).
type BuildEvent struct {
	Function string     `json:"function"`
	Kind     string     `json:"kind"`
	At       time.Time  `json:"at"`
	Err      string     `json:"error,omitempty"`
	Build    *BuildInfo `json:"build,omitempty"`
}

// buildsKept is how many build events Builds gives back to a new follower.
const buildsKept = 200

// buildBook keeps each function's last good build and the last events,
// and hands new events to followers.
type buildBook struct {
	mu        sync.Mutex
	last      map[string]BuildInfo
	events    []BuildEvent
	followers map[chan BuildEvent]bool
}

// RecordBuild records a step of a function's build; a BuildDone event's
// Build becomes the function's last build. At is set when zero.
func (g *Gateway) RecordBuild(e BuildEvent) {
	if e.At.IsZero() {
		e.At = time.Now().UTC()
	}
	b := &g.builds
	b.mu.Lock()
	defer b.mu.Unlock()
	if e.Kind == BuildDone && e.Build != nil {
		if b.last == nil {
			b.last = map[string]BuildInfo{}
		}
		b.last[e.Function] = *e.Build
	}
	b.events = append(b.events, e)
	if len(b.events) > buildsKept {
		b.events = b.events[len(b.events)-buildsKept:]
	}
	for c := range b.followers {
		select {
		case c <- e:
		default: // a follower that does not keep up misses events
		}
	}
}

// LastBuilds returns each function's last good build, by name.
func (g *Gateway) LastBuilds() map[string]BuildInfo {
	b := &g.builds
	b.mu.Lock()
	defer b.mu.Unlock()
	return maps.Clone(b.last)
}

// FollowBuilds returns the last build events, oldest first, and a channel
// of the next ones until stop is called.
func (g *Gateway) FollowBuilds() (recent []BuildEvent, next <-chan BuildEvent, stop func()) {
	b := &g.builds
	b.mu.Lock()
	defer b.mu.Unlock()
	c := make(chan BuildEvent, 64)
	if b.followers == nil {
		b.followers = map[chan BuildEvent]bool{}
	}
	b.followers[c] = true
	return append([]BuildEvent(nil), b.events...), c, func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		delete(b.followers, c)
	}
}
