package node

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

func TestNew(t *testing.T) {
	tests := []struct {
		name    string
		opts    []Option
		wantErr bool
	}{
		{"a cache folder", []Option{WithCacheDir(t.TempDir())}, false},
		{"no cache folder", nil, true},
		{"an empty cache folder", []Option{WithCacheDir("")}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := New(tc.opts...); (err != nil) != tc.wantErr {
				t.Errorf("New() = %v, want an error: %v", err, tc.wantErr)
			}
		})
	}
}
