package step

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// sink records events.
type sink struct {
	mu     sync.Mutex
	events []Event
}

func (s *sink) add(e Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events = append(s.events, e)
}

func TestStep(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name string
		run  func(ctx context.Context)
		want []Event
	}{
		{
			name: "done",
			run:  func(ctx context.Context) { Start(ctx, "compile").End(nil) },
			want: []Event{{ID: 1, Step: "compile", State: Started}, {ID: 1, Step: "compile", State: Done}},
		},
		{
			name: "failed, once",
			run: func(ctx context.Context) {
				s := Start(ctx, "compile")
				s.End(boom)
				s.End(nil)
			},
			want: []Event{{ID: 1, Step: "compile", State: Started}, {ID: 1, Step: "compile", State: Failed, Err: boom}},
		},
		{
			name: "bytes written, reported once within ProgressEvery",
			run: func(ctx context.Context) {
				s := Start(ctx, "download")
				s.SetTotal(6)
				w := s.Writer(&bytes.Buffer{})
				w.Write([]byte("abc"))
				w.Write([]byte("def"))
				s.End(nil)
			},
			want: []Event{
				{ID: 1, Step: "download", State: Started},
				{ID: 1, Step: "download", State: Running, Bytes: 3, Total: 6},
				{ID: 1, Step: "download", State: Done, Bytes: 6, Total: 6},
			},
		},
		{
			name: "a layer's size replaces the bytes counted",
			run: func(ctx context.Context) {
				s := Start(ctx, "layer deps")
				s.Finish(Result{Bytes: 42, Cached: true})
			},
			want: []Event{{ID: 1, Step: "layer deps", State: Started}, {ID: 1, Step: "layer deps", State: Done, Bytes: 42, Cached: true}},
		},
		{
			name: "counted, ids apart",
			run: func(ctx context.Context) {
				a, b := Start(ctx, "push"), Start(ctx, "push")
				a.Counts("layer")
				a.Count(2)
				a.End(nil)
				b.Finish(Result{Empty: true})
			},
			want: []Event{
				{ID: 1, Step: "push", State: Started},
				{ID: 2, Step: "push", State: Started},
				{ID: 1, Step: "push", State: Done, Count: 2, Unit: "layer"},
				{ID: 2, Step: "push", State: Done, Empty: true},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var s sink
			tc.run(WithSink(context.Background(), s.add))
			if diff := cmp.Diff(tc.want, s.events, cmpopts.IgnoreFields(Event{}, "Took"), cmpopts.EquateErrors()); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
		})
	}
}

// TestNoSink checks that a step without a sink does nothing, and that a
// writer is then the one given.
func TestNoSink(t *testing.T) {
	s := Start(context.Background(), "compile")
	if s != nil {
		t.Fatalf("Start() without a sink = %v, want nil", s)
	}
	var buf bytes.Buffer
	if w := s.Writer(&buf); w != &buf {
		t.Errorf("Writer() of a nil step = %T, want the writer given", w)
	}
	s.SetTotal(1)
	s.Counts("layer")
	s.Count(1)
	s.Add(1)
	s.End(nil)
}

// TestProgressEvery checks that bytes are reported again once
// ProgressEvery has passed.
func TestProgressEvery(t *testing.T) {
	var s sink
	st := Start(WithSink(context.Background(), s.add), "push")
	st.Add(1)
	st.Add(1)
	time.Sleep(ProgressEvery + 10*time.Millisecond)
	st.Add(1)
	var got []int64
	for _, e := range s.events {
		if e.State == Running {
			got = append(got, e.Bytes)
		}
	}
	if want := []int64{1, 3}; !cmp.Equal(got, want) {
		t.Errorf("progress bytes = %v, want %v", got, want)
	}
}
