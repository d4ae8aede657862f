package step

import (
	"context"
	"io"
	"sync/atomic"
	"time"
)

// State is where a step is in its life.
type State int

const (
	// Started: the step's work began.
	Started State = iota
	// Running: the step moved bytes since it last said so.
	Running
	// Done: the step finished.
	Done
	// Failed: the step returned an error, or was cancelled.
	Failed
)

// ProgressEvery is how often a step reports its bytes at most.
const ProgressEvery = 100 * time.Millisecond

// Event is what a step tells its sink.
type Event struct {
	// ID tells apart steps of the same name; it is unique per sink.
	ID    uint64
	Step  string
	State State
	// Bytes moved so far (Running) or in all (Done): downloaded, written
	// or uploaded; for a layer, its compressed size.
	Bytes int64
	// Total is the bytes expected, when known (a download); else 0.
	Total int64
	// Count is how many Unit the step handled (2 "layer" pushed); Unit ""
	// when the step counts nothing.
	Count int
	Unit  string
	// Cached: the step's result came from the cache, nothing was built.
	Cached bool
	// Empty: the step had nothing to do (a layer with no files).
	Empty bool
	// Took is the step's duration (Done, Failed).
	Took time.Duration
	// Err is why the step failed (Failed).
	Err error
}

// Sink receives the events of steps, from several goroutines at once.
type Sink func(Event)

type reporter struct {
	sink Sink
	ids  atomic.Uint64
}

type ctxKey struct{}

// WithSink returns a context whose steps report to sink.
func WithSink(ctx context.Context, sink Sink) context.Context {
	return context.WithValue(ctx, ctxKey{}, &reporter{sink: sink})
}

// Step is a running step. A nil *Step, which Start returns when no one
// listens, does nothing.
type Step struct {
	r     *reporter
	id    uint64
	name  string
	start time.Time
	unit  string
	bytes atomic.Int64
	total atomic.Int64
	count atomic.Int64
	// next is when, in UnixNano, the step may next report its bytes.
	next  atomic.Int64
	ended atomic.Bool
}

// Start begins the step called name in ctx's sink.
func Start(ctx context.Context, name string) *Step {
	r, _ := ctx.Value(ctxKey{}).(*reporter)
	if r == nil {
		return nil
	}
	s := &Step{r: r, id: r.ids.Add(1), name: name, start: time.Now()}
	r.sink(Event{ID: s.id, Step: name, State: Started})
	return s
}

// SetTotal says how many bytes the step expects to move.
func (s *Step) SetTotal(n int64) {
	if s != nil {
		s.total.Store(n)
	}
}

// Counts says that the step counts things called unit ("layer"), which
// Count adds to; the count shows even when it stays 0.
func (s *Step) Counts(unit string) {
	if s != nil {
		s.unit = unit
	}
}

// Count adds n to what the step counted.
func (s *Step) Count(n int) {
	if s != nil {
		s.count.Add(int64(n))
	}
}

// Add adds n bytes moved, and reports them unless the step did so less
// than ProgressEvery ago.
func (s *Step) Add(n int64) {
	if s == nil {
		return
	}
	total := s.bytes.Add(n)
	now := time.Now().UnixNano()
	next := s.next.Load()
	if now < next || !s.next.CompareAndSwap(next, now+int64(ProgressEvery)) || s.ended.Load() {
		return
	}
	s.r.sink(Event{ID: s.id, Step: s.name, State: Running, Bytes: total, Total: s.total.Load()})
}

// Writer returns w counting what is written to it as the step's bytes.
func (s *Step) Writer(w io.Writer) io.Writer {
	if s == nil {
		return w
	}
	return &counter{w: w, s: s}
}

type counter struct {
	w io.Writer
	s *Step
}

func (c *counter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.s.Add(int64(n))
	return n, err
}

// Result is how a step ended.
type Result struct {
	Err error
	// Bytes, when not 0, replaces the bytes counted with Add (a layer's
	// compressed size).
	Bytes         int64
	Cached, Empty bool
}

// End ends the step: done if err is nil, else failed.
func (s *Step) End(err error) { s.Finish(Result{Err: err}) }

// Finish ends the step with r; a second call does nothing.
func (s *Step) Finish(r Result) {
	if s == nil || s.ended.Swap(true) {
		return
	}
	e := Event{ID: s.id, Step: s.name, State: Done, Bytes: s.bytes.Load(), Total: s.total.Load(),
		Count: int(s.count.Load()), Unit: s.unit, Cached: r.Cached, Empty: r.Empty, Took: time.Since(s.start), Err: r.Err}
	if r.Bytes != 0 {
		e.Bytes = r.Bytes
	}
	if r.Err != nil {
		e.State = Failed
	}
	s.r.sink(e)
}
