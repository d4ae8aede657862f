package handler

import (
	"context"
	"testing"
)

type key struct{}

func TestContext(t *testing.T) {
	var r Request
	if got := r.Context(); got != context.Background() {
		t.Errorf("Context() of a new Request = %v, want context.Background()", got)
	}
	ctx := context.WithValue(context.Background(), key{}, "v")
	r.WithContext(ctx)
	if got := r.Context().Value(key{}); got != "v" {
		t.Errorf("Context().Value() after WithContext = %v, want v", got)
	}
	defer func() {
		if recover() == nil {
			t.Errorf("WithContext(nil) did not panic")
		}
	}()
	//lint:ignore SA1012 the nil context is what is tested
	r.WithContext(nil)
}
