// Package lazy holds values that take work to find, such as a host tool's
// version or a compile, found once, when first needed.
package lazy

import (
	"context"
	"sync"
)

// Value is a value found by a function the first time Get is called.
// Callers at the same time wait for that one call. An error is kept like
// a value, so that the steps sharing a failed stage report one failure,
// unless it came with the caller's context ending: the next Get then
// tries again. A value whose errors must not outlive one build is made
// anew for each build.
type Value[T any] struct {
	find func(context.Context) (T, error)

	mu    sync.Mutex
	found bool
	v     T
	err   error
}

// New returns a value that find finds.
func New[T any](find func(context.Context) (T, error)) *Value[T] {
	return &Value[T]{find: find}
}

// Known returns a value found already, as tests set one.
func Known[T any](v T) *Value[T] {
	return &Value[T]{found: true, v: v}
}

// Get returns the value, finding it on the first call.
func (l *Value[T]) Get(ctx context.Context) (T, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.found {
		l.v, l.err = l.find(ctx)
		l.found = l.err == nil || ctx.Err() == nil
	}
	return l.v, l.err
}
