package run

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestNewOptions(t *testing.T) {
	tests := []struct {
		name    string
		opts    []Option
		wantEnv []string
		wantErr bool
	}{
		{name: "cache dir only", opts: []Option{WithCacheDir("/c")}},
		{name: "port becomes env, after WithEnv", opts: []Option{WithCacheDir("/c"), WithPort(8080), WithEnv([]string{"port=1", "A=b"})}, wantEnv: []string{"port=1", "A=b", "port=8080"}},
		{name: "no cache dir", opts: []Option{WithPort(8080)}, wantErr: true},
		{name: "port out of range", opts: []Option{WithCacheDir("/c"), WithPort(70000)}, wantErr: true},
		{name: "no grace period", opts: []Option{WithCacheDir("/c"), WithGracePeriod(0)}, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := newOptions(tc.opts)
			if (err != nil) != tc.wantErr {
				t.Fatalf("newOptions() = %v, want error %v", err, tc.wantErr)
			}
			if err == nil && !cmp.Equal(got.env, tc.wantEnv) {
				t.Errorf("newOptions() env = %v, want %v", got.env, tc.wantEnv)
			}
		})
	}
}
