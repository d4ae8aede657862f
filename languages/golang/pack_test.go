package golang

import "testing"

// newPack returns the pack New makes with opts, failing the test if it
// fails.
func newPack(t testing.TB, opts ...Option) *Pack {
	t.Helper()
	p, err := New(opts...)
	if err != nil {
		t.Fatalf("New() = %v", err)
	}
	return p
}
