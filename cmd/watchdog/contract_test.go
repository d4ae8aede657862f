package main

import (
	"strings"
	"testing"

	"github.com/kiln-build/kiln/internal/contract"
)

// TestContract: the watchdog reads the settings the packs write as the
// image contract says, and its defaults are the contract's. The watchdog
// keeps its own copies of the defaults: an import would change its
// binary, and so every image's watchdog layer.
func TestContract(t *testing.T) {
	env := append([]string{contract.FProcess("./handler"), contract.RawLogs}, contract.HTTPMode(contract.UpstreamPort)...)
	lookup := func(name string) (string, bool) {
		for _, kv := range env {
			if k, v, ok := strings.Cut(kv, "="); ok && k == name {
				return v, true
			}
		}
		return "", false
	}
	c, warnings, err := loadConfig(lookup)
	if err != nil || len(warnings) > 0 {
		t.Fatalf("loadConfig(%q) = %v, warnings %q", env, err, warnings)
	}
	tests := []struct {
		name      string
		got, want any
	}{
		{"mode", c.mode, modeHTTP},
		{"process", c.process, "./handler"},
		{"upstream", c.upstreamURL, "http://127.0.0.1:8082"},
		{"prefix logs", c.prefixLogs, false},
		{"port", c.port, contract.WatchdogPort},
		{"static path", c.staticPath, "/" + contract.AppDir + "/public"},
	}
	for _, tc := range tests {
		if tc.got != tc.want {
			t.Errorf("%s = %v, want %v", tc.name, tc.got, tc.want)
		}
	}
}
