package contract

import (
	"fmt"
	"slices"
	"testing"
)

func TestUser(t *testing.T) {
	if want := fmt.Sprintf("%d:%d", UID, GID); User != want {
		t.Errorf("User = %q, want %q from UID and GID", User, want)
	}
}

func TestEnv(t *testing.T) {
	tests := []struct {
		name string
		got  []string
		want []string
	}{
		{"fprocess", []string{FProcess("./handler")}, []string{"fprocess=./handler"}},
		{"fprocess with arguments", []string{FProcess("python3 /home/app/index.py http")}, []string{"fprocess=python3 /home/app/index.py http"}},
		{"http mode", HTTPMode(UpstreamPort), []string{"mode=http", "upstream_url=http://127.0.0.1:8082"}},
		{"http mode, another port", HTTPMode(3000), []string{"mode=http", "upstream_url=http://127.0.0.1:3000"}},
		{"classic mode sets no mode", ClassicMode(), nil},
		{"raw logs", []string{RawLogs}, []string{"prefix_logs=false"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if !slices.Equal(tc.got, tc.want) {
				t.Errorf("got %q, want %q", tc.got, tc.want)
			}
		})
	}
}
