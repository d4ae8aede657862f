package main

import (
	"strings"
	"testing"
)

// FuzzLoadConfig feeds arbitrary environments, one NAME=VALUE a line, to
// the watchdog's configuration: it must never panic, and a configuration
// it accepts must be valid and read the same twice.
func FuzzLoadConfig(f *testing.F) {
	for _, seed := range []string{
		"fprocess=node index.js",
		"fprocess=python3 index.py\nmode=http\nupstream_url=http://127.0.0.1:5000\nexec_timeout=10s",
		"fprocess=cat\nwrite_timeout=5\nread_timeout=-1s\nmax_inflight=-3\nport=0x1F90",
		"fprocess=./handler\nmode=streaming\nport=8080\nmetrics_port=8080\nbind_address=::1",
		"fprocess=x\njwt_auth=true\nOPENFAAS_NAME=fn\njwt_auth_authority=http://127.0.0.1:8080",
		"function_process='a b' \"c\"\nhealthcheck_interval=1ms\nprefix_logs=false\nlog_buffer_size=1",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, envText string) {
		env := map[string]string{}
		for _, line := range strings.Split(envText, "\n") {
			if name, value, ok := strings.Cut(line, "="); ok {
				env[name] = value
			}
		}
		c, _, err := loadConfig(lookupFrom(env))
		if err != nil {
			return
		}
		if err := c.validate(); err != nil {
			t.Errorf("loadConfig() accepted a configuration validate() refuses: %v", err)
		}
		again, _, err := loadConfig(lookupFrom(env))
		if err != nil || again.port != c.port || again.process != c.process || again.mode != c.mode {
			t.Errorf("loadConfig() twice = %v, %v; want the same", again, err)
		}
	})
}
