package lazy

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
)

func TestGet(t *testing.T) {
	var calls atomic.Int32
	v := New(func(ctx context.Context) (int, error) { calls.Add(1); return 42, nil })
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if got, err := v.Get(context.Background()); got != 42 || err != nil {
				t.Errorf("Get() = %d, %v, want 42", got, err)
			}
		})
	}
	wg.Wait()
	if n := calls.Load(); n != 1 {
		t.Errorf("find ran %d times, want 1", n)
	}
	if got, _ := Known("x").Get(context.Background()); got != "x" {
		t.Errorf("Known(x).Get() = %q, want x", got)
	}
}

func TestErrors(t *testing.T) {
	tests := []struct {
		name      string
		cancel    bool
		wantCalls int32
	}{
		{"kept", false, 1},
		{"tried again after the context ended", true, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var calls atomic.Int32
			v := New(func(ctx context.Context) (int, error) { calls.Add(1); return 0, errors.New("no tool") })
			ctx, cancel := context.WithCancel(context.Background())
			if tc.cancel {
				cancel()
			}
			defer cancel()
			for range 2 {
				if _, err := v.Get(ctx); err == nil {
					t.Fatal("Get() = nil error, want the find's")
				}
			}
			if n := calls.Load(); n != tc.wantCalls {
				t.Errorf("find ran %d times, want %d", n, tc.wantCalls)
			}
		})
	}
}
