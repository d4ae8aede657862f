package run

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestMergeEnv(t *testing.T) {
	tests := []struct {
		name  string
		lists [][]string
		want  []string
	}{
		{"empty", nil, nil},
		{"later wins, first position kept", [][]string{{"A=1", "B=2"}, {"C=3", "A=4"}}, []string{"A=4", "B=2", "C=3"}},
		{"values may hold =", [][]string{{"OPTS=-Da=b"}}, []string{"OPTS=-Da=b"}},
		{"entries without = are dropped", [][]string{{"BARE", "A=1"}}, []string{"A=1"}},
		{"empty value overrides", [][]string{{"A=1"}, {"A="}}, []string{"A="}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := mergeEnv(tc.lists...); !cmp.Equal(got, tc.want) {
				t.Errorf("mergeEnv() = %v, want %v", got, tc.want)
			}
		})
	}
}

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
