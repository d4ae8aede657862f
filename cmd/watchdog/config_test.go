package main

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// defaults is the configuration with nothing set but what a mode requires.
func defaults(m mode, process string) config {
	return config{
		mode:                m,
		process:             process,
		port:                8080,
		metricsPort:         8081,
		readTimeout:         30 * time.Second,
		writeTimeout:        30 * time.Second,
		execTimeout:         30 * time.Second,
		healthcheckInterval: 30 * time.Second,
		maxInflight:         0,
		prefixLogs:          true,
		logBufferSize:       64 * 1024,
		bufferHTTP:          false,
		contentType:         "application/octet-stream",
		suppressLock:        false,
		staticPath:          "/home/app/public",
		readyPath:           "",
		logCallID:           false,
	}
}

func lookupFrom(env map[string]string) func(string) (string, bool) {
	return func(name string) (string, bool) {
		v, ok := env[name]
		return v, ok
	}
}

func TestLoadConfig(t *testing.T) {
	with := func(c config, f func(*config)) config {
		f(&c)
		return c
	}
	streaming := defaults(modeStreaming, "cat")
	classic := defaults(modeClassic, "cat")
	classic.execTimeout, classic.contentType = 0, ""
	classic.combineOutput, classic.cgiHeaders = true, true
	httpMode := defaults(modeHTTP, "node index.js")
	httpMode.upstreamURL = "http://127.0.0.1:3000"
	httpEnv := func(extra map[string]string) map[string]string {
		env := map[string]string{"mode": "http", "fprocess": "node index.js", "upstream_url": "http://127.0.0.1:3000"}
		for k, v := range extra {
			env[k] = v
		}
		return env
	}

	tests := []struct {
		name         string
		env          map[string]string
		want         config
		wantWarnings []string // substrings, in order
	}{
		{
			name: "streaming mode",
			env:  map[string]string{"mode": "streaming", "fprocess": "cat"},
			want: streaming,
		},
		{
			name: "no mode: the classic watchdog's contract and defaults",
			env:  map[string]string{"fprocess": "cat"},
			want: classic,
		},
		{
			name: "classic settings",
			env: map[string]string{"fprocess": "cat", "exec_timeout": "5", "content_type": "text/plain",
				"combine_output": "false", "cgi_headers": "1", "marshal_request": "true", "write_debug": "true", "debug_headers": "true"},
			want: with(classic, func(c *config) {
				c.execTimeout = 5 * time.Second
				c.contentType = "text/plain"
				c.combineOutput, c.cgiHeaders = false, false
				c.marshalRequest, c.writeDebug, c.debugHeaders = true, true, true
			}),
		},
		{
			name: "classic settings are not read by of-watchdog's modes",
			env:  map[string]string{"mode": "streaming", "fprocess": "cat", "combine_output": "false", "marshal_request": "true"},
			want: streaming,
		},
		{
			name: "function_process alone",
			env:  map[string]string{"mode": "streaming", "function_process": "cat"},
			want: streaming,
		},
		{
			name: "function_process wins over fprocess",
			env:  map[string]string{"mode": "streaming", "fprocess": "wc -l", "function_process": "cat"},
			want: streaming,
		},
		{
			name: "empty function_process falls back to fprocess",
			env:  map[string]string{"mode": "streaming", "fprocess": "cat", "function_process": ""},
			want: streaming,
		},
		{
			name: "http mode with upstream_url",
			env:  httpEnv(nil),
			want: httpMode,
		},
		{
			name: "http_upstream_url alone",
			env:  map[string]string{"mode": "http", "fprocess": "node index.js", "http_upstream_url": "http://127.0.0.1:3000"},
			want: httpMode,
		},
		{
			name: "http_upstream_url wins over upstream_url",
			env:  httpEnv(map[string]string{"upstream_url": "http://127.0.0.1:9", "http_upstream_url": "http://127.0.0.1:3000"}),
			want: httpMode,
		},
		{
			name: "trailing slash of upstream_url dropped",
			env:  httpEnv(map[string]string{"upstream_url": "http://127.0.0.1:3000/"}),
			want: httpMode,
		},
		{
			name: "serializing mode",
			env:  map[string]string{"mode": "serializing", "fprocess": "cat"},
			want: defaults(modeSerializing, "cat"),
		},
		{
			name: "static mode needs no fprocess",
			env:  map[string]string{"mode": "static", "static_path": "/srv/www"},
			want: with(defaults(modeStatic, ""), func(c *config) { c.staticPath = "/srv/www" }),
		},
		{
			name: "bind_address",
			env:  map[string]string{"mode": "streaming", "fprocess": "cat", "bind_address": "127.0.0.1"},
			want: with(streaming, func(c *config) { c.bindAddress = "127.0.0.1" }),
		},
		{
			name: "port and metrics_port",
			env:  map[string]string{"mode": "streaming", "fprocess": "cat", "port": "9000", "metrics_port": "9001"},
			want: with(streaming, func(c *config) { c.port, c.metricsPort = 9000, 9001 }),
		},
		{
			name: "timeouts as integer seconds",
			env:  map[string]string{"mode": "streaming", "fprocess": "cat", "read_timeout": "5", "write_timeout": "15", "exec_timeout": "10"},
			want: with(streaming, func(c *config) {
				c.readTimeout, c.writeTimeout, c.execTimeout = 5*time.Second, 15*time.Second, 10*time.Second
				c.healthcheckInterval = 15 * time.Second
			}),
		},
		{
			name: "timeouts as Go durations",
			env:  map[string]string{"mode": "streaming", "fprocess": "cat", "read_timeout": "1m30s", "write_timeout": "500ms", "exec_timeout": "2m"},
			want: with(streaming, func(c *config) {
				c.readTimeout, c.writeTimeout, c.execTimeout = 90*time.Second, 500*time.Millisecond, 2*time.Minute
				c.healthcheckInterval = 500 * time.Millisecond
			}),
		},
		{
			name: "unparsable durations keep the defaults",
			env:  map[string]string{"mode": "streaming", "fprocess": "cat", "read_timeout": "soon", "exec_timeout": "10 s"},
			want: streaming,
			wantWarnings: []string{
				`read_timeout="soon" is not a duration, using 30s`,
				`exec_timeout="10 s" is not a duration, using 30s`,
			},
		},
		{
			name: "exec_timeout 0 disables it",
			env:  map[string]string{"mode": "streaming", "fprocess": "cat", "exec_timeout": "0"},
			want: with(streaming, func(c *config) { c.execTimeout = 0 }),
		},
		{
			name: "healthcheck_interval set",
			env:  map[string]string{"mode": "streaming", "fprocess": "cat", "write_timeout": "20s", "healthcheck_interval": "2s"},
			want: with(streaming, func(c *config) { c.writeTimeout, c.healthcheckInterval = 20*time.Second, 2*time.Second }),
		},
		{
			name:         "unparsable healthcheck_interval follows write_timeout",
			env:          map[string]string{"mode": "streaming", "fprocess": "cat", "write_timeout": "20s", "healthcheck_interval": "x"},
			want:         with(streaming, func(c *config) { c.writeTimeout, c.healthcheckInterval = 20*time.Second, 20*time.Second }),
			wantWarnings: []string{`healthcheck_interval="x" is not a duration, using 20s`},
		},
		{
			name: "max_inflight",
			env:  map[string]string{"mode": "streaming", "fprocess": "cat", "max_inflight": "5"},
			want: with(streaming, func(c *config) { c.maxInflight = 5 }),
		},
		{
			name:         "unparsable max_inflight is unlimited",
			env:          map[string]string{"mode": "streaming", "fprocess": "cat", "max_inflight": "many"},
			want:         streaming,
			wantWarnings: []string{`max_inflight="many" is not an integer, using 0`},
		},
		{
			name: "prefix_logs false",
			env:  map[string]string{"mode": "streaming", "fprocess": "cat", "prefix_logs": "false"},
			want: with(streaming, func(c *config) { c.prefixLogs = false }),
		},
		{
			name: "prefix_logs takes any ParseBool spelling",
			env:  map[string]string{"mode": "streaming", "fprocess": "cat", "prefix_logs": "F"},
			want: with(streaming, func(c *config) { c.prefixLogs = false }),
		},
		{
			name:         "unparsable prefix_logs stays true",
			env:          map[string]string{"mode": "streaming", "fprocess": "cat", "prefix_logs": "no"},
			want:         streaming,
			wantWarnings: []string{`prefix_logs="no" is not a boolean, using true`},
		},
		{
			name: "log_buffer_size",
			env:  map[string]string{"mode": "streaming", "fprocess": "cat", "log_buffer_size": "1024"},
			want: with(streaming, func(c *config) { c.logBufferSize = 1024 }),
		},
		{
			name: "log_buffer_size -1 is unbounded",
			env:  map[string]string{"mode": "streaming", "fprocess": "cat", "log_buffer_size": "-1"},
			want: with(streaming, func(c *config) { c.logBufferSize = -1 }),
		},
		{
			name:         "log_buffer_size 0 keeps the default",
			env:          map[string]string{"mode": "streaming", "fprocess": "cat", "log_buffer_size": "0"},
			want:         streaming,
			wantWarnings: []string{"log_buffer_size=0 is not a size, using 65536"},
		},
		{
			name: "buffer_http true",
			env:  map[string]string{"mode": "streaming", "fprocess": "cat", "buffer_http": "true"},
			want: with(streaming, func(c *config) { c.bufferHTTP = true }),
		},
		{
			name: "http_buffer_req_body 1",
			env:  map[string]string{"mode": "streaming", "fprocess": "cat", "http_buffer_req_body": "1"},
			want: with(streaming, func(c *config) { c.bufferHTTP = true }),
		},
		{
			name: "either buffer alias set to true wins",
			env:  map[string]string{"mode": "streaming", "fprocess": "cat", "buffer_http": "false", "http_buffer_req_body": "true"},
			want: with(streaming, func(c *config) { c.bufferHTTP = true }),
		},
		{
			name: "buffer_http takes only true and 1",
			env:  map[string]string{"mode": "streaming", "fprocess": "cat", "buffer_http": "yes"},
			want: streaming,
		},
		{
			name: "content_type",
			env:  map[string]string{"mode": "streaming", "fprocess": "cat", "content_type": "application/json"},
			want: with(streaming, func(c *config) { c.contentType = "application/json" }),
		},
		{
			name: "suppress_lock 1",
			env:  map[string]string{"mode": "streaming", "fprocess": "cat", "suppress_lock": "1"},
			want: with(streaming, func(c *config) { c.suppressLock = true }),
		},
		{
			name: "suppress_lock takes only true and 1",
			env:  map[string]string{"mode": "streaming", "fprocess": "cat", "suppress_lock": "TRUE"},
			want: streaming,
		},
		{
			name: "ready_path",
			env:  httpEnv(map[string]string{"ready_path": "/healthz"}),
			want: with(httpMode, func(c *config) { c.readyPath = "/healthz" }),
		},
		{
			name: "log_callid true",
			env:  map[string]string{"mode": "streaming", "fprocess": "cat", "log_callid": "true"},
			want: with(streaming, func(c *config) { c.logCallID = true }),
		},
		{
			name: "log_callid 1",
			env:  map[string]string{"mode": "streaming", "fprocess": "cat", "log_callid": "1"},
			want: with(streaming, func(c *config) { c.logCallID = true }),
		},
		{
			name: "the README's log_call_id spelling is not read",
			env:  map[string]string{"mode": "streaming", "fprocess": "cat", "log_call_id": "true"},
			want: streaming,
		},
		{
			name: "jwt_auth: the gateway in the cluster",
			env:  map[string]string{"mode": "streaming", "fprocess": "cat", "jwt_auth": "true", "OPENFAAS_NAME": "fn", "OPENFAAS_NAMESPACE": "openfaas-fn"},
			want: with(streaming, func(c *config) {
				c.jwt = jwtConfig{enabled: true, authority: "http://gateway.openfaas:8080/.well-known/openid-configuration", name: "fn", namespace: "openfaas-fn"}
				c.functionName = "fn.openfaas-fn"
			}),
		},
		{
			name: "jwt_auth_local: a port-forwarded gateway",
			env:  map[string]string{"mode": "streaming", "fprocess": "cat", "jwt_auth": "1", "jwt_auth_local": "1", "jwt_auth_debug": "true", "OPENFAAS_NAME": "fn", "OPENFAAS_NAMESPACE": ""},
			want: with(streaming, func(c *config) {
				c.jwt = jwtConfig{enabled: true, debug: true, authority: "http://127.0.0.1:8000/.well-known/openid-configuration", name: "fn"}
				c.functionName = "fn"
			}),
		},
		{
			name: "jwt_auth_authority moves the authority",
			env:  map[string]string{"mode": "streaming", "fprocess": "cat", "jwt_auth": "true", "jwt_auth_authority": "https://gw.example.com/.well-known/openid-configuration", "OPENFAAS_NAME": "fn", "OPENFAAS_NAMESPACE": "dev"},
			want: with(streaming, func(c *config) {
				c.jwt = jwtConfig{enabled: true, authority: "https://gw.example.com/.well-known/openid-configuration", name: "fn", namespace: "dev"}
				c.functionName = "fn.dev"
			}),
		},
		{
			name: "the function's name labels kiln's metrics",
			env:  map[string]string{"mode": "streaming", "fprocess": "cat", "OPENFAAS_NAME": "fn", "OPENFAAS_NAMESPACE": "dev"},
			want: with(streaming, func(c *config) { c.functionName = "fn.dev" }),
		},
		{
			name: "jwt settings without jwt_auth are not read",
			env:  map[string]string{"mode": "streaming", "fprocess": "cat", "jwt_auth": "false", "jwt_auth_local": "1"},
			want: streaming,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, warnings, err := loadConfig(lookupFrom(tc.env))
			if err != nil {
				t.Fatalf("loadConfig(%v) error = %v, want nil", tc.env, err)
			}
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(config{}, jwtConfig{})); diff != "" {
				t.Errorf("loadConfig(%v) mismatch (-want +got):\n%s", tc.env, diff)
			}
			if len(warnings) != len(tc.wantWarnings) {
				t.Fatalf("loadConfig(%v) warnings = %q, want %d matching %q", tc.env, warnings, len(tc.wantWarnings), tc.wantWarnings)
			}
			for i, w := range tc.wantWarnings {
				if !strings.Contains(warnings[i], w) {
					t.Errorf("loadConfig(%v) warning %d = %q, want it to contain %q", tc.env, i, warnings[i], w)
				}
			}
		})
	}
}

func TestLoadConfigErrors(t *testing.T) {
	tests := []struct {
		name     string
		env      map[string]string
		wantVar  string
		wantText string
	}{
		{"unknown mode", map[string]string{"mode": "bogus", "fprocess": "cat"}, "mode", `mode="bogus": unknown mode`},
		{"inproc is not supported", map[string]string{"mode": "inproc", "fprocess": "cat"}, "mode", "not supported"},
		{"afterburn is not supported", map[string]string{"mode": "afterburn", "fprocess": "cat"}, "mode", "not supported"},
		{"classic needs fprocess", map[string]string{}, "fprocess", "required in classic mode"},
		{"streaming needs fprocess", map[string]string{"mode": "streaming"}, "fprocess", "required in streaming mode"},
		{"log_buffer_size not a number", map[string]string{"fprocess": "cat", "log_buffer_size": "big"}, "log_buffer_size", "want a number of bytes"},
		{"jwt_auth needs OPENFAAS_NAME", map[string]string{"fprocess": "cat", "jwt_auth": "true", "OPENFAAS_NAMESPACE": "fn"}, "OPENFAAS_NAME", "required by jwt_auth=true"},
		{"jwt_auth_authority must be a URL", map[string]string{"fprocess": "cat", "jwt_auth": "true", "jwt_auth_authority": "gateway:8080"}, "jwt_auth_authority", "want the http:// or https:// URL"},
		{"serializing needs fprocess", map[string]string{"mode": "serializing"}, "fprocess", "required in serializing mode"},
		{"http needs fprocess", map[string]string{"mode": "http", "upstream_url": "http://127.0.0.1:3000"}, "fprocess", "required in http mode"},
		{"http needs upstream_url", map[string]string{"mode": "http", "fprocess": "node index.js"}, "upstream_url", "required in http mode"},
		{"upstream_url must be http", map[string]string{"mode": "http", "fprocess": "x", "upstream_url": "https://127.0.0.1:3000"}, "upstream_url", "want an http://host:port URL"},
		{"upstream_url must be absolute", map[string]string{"mode": "http", "fprocess": "x", "upstream_url": "127.0.0.1:3000"}, "upstream_url", "want an http://host:port URL"},
		{"write_timeout 0", map[string]string{"fprocess": "cat", "write_timeout": "0"}, "write_timeout", "must be greater than 0"},
		{"port not a number", map[string]string{"fprocess": "cat", "port": "http"}, "port", "want a TCP port number"},
		{"bind_address not an IP", map[string]string{"fprocess": "cat", "bind_address": "localhost:80"}, "bind_address", "want an IP address"},
		{"port out of range", map[string]string{"fprocess": "cat", "port": "70000"}, "port", "want a TCP port number"},
		{"port 0", map[string]string{"fprocess": "cat", "port": "0"}, "port", "want a TCP port number"},
		{"metrics_port not a number", map[string]string{"fprocess": "cat", "metrics_port": "x"}, "metrics_port", "want a TCP port number"},
		{"ready_path relative", map[string]string{"fprocess": "cat", "ready_path": "healthz"}, "ready_path", "want a path starting with /"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := loadConfig(lookupFrom(tc.env))
			var ce *configError
			if !errors.As(err, &ce) {
				t.Fatalf("loadConfig(%v) error = %v, want a *configError", tc.env, err)
			}
			if ce.name != tc.wantVar {
				t.Errorf("loadConfig(%v) error names %q, want %q", tc.env, ce.name, tc.wantVar)
			}
			if !strings.Contains(err.Error(), tc.wantText) {
				t.Errorf("loadConfig(%v) error = %q, want it to contain %q", tc.env, err, tc.wantText)
			}
		})
	}
}

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Duration
		wantErr bool
	}{
		{"10", 10 * time.Second, false},
		{"0", 0, false},
		{"-5", -5 * time.Second, false},
		{"10s", 10 * time.Second, false},
		{"1m30s", 90 * time.Second, false},
		{"250ms", 250 * time.Millisecond, false},
		{"1.5", 0, true},
		{"ten", 0, true},
		{"", 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := parseDuration(tc.in)
			if (err != nil) != tc.wantErr {
				t.Fatalf("parseDuration(%q) error = %v, want error %v", tc.in, err, tc.wantErr)
			}
			if got != tc.want {
				t.Errorf("parseDuration(%q) = %v, want %v", tc.in, got, tc.want)
			}
		})
	}
}

func TestParseFlag(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"true", true}, {"1", true}, {"", false}, {"false", false}, {"0", false}, {"TRUE", false}, {"yes", false},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			if got := parseFlag(tc.in); got != tc.want {
				t.Errorf("parseFlag(%q) = %v, want %v", tc.in, got, tc.want)
			}
		})
	}
}

func TestSplitCommand(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"cat", []string{"cat"}},
		{"node index.js", []string{"node", "index.js"}},
		{"java -XX:+UseContainerSupport com.openfaas.entrypoint.App", []string{"java", "-XX:+UseContainerSupport", "com.openfaas.entrypoint.App"}},
		// No shell and no quoting: the contract splits on each single space.
		{`sh -c "echo hi"`, []string{"sh", "-c", `"echo`, `hi"`}},
		{"a  b", []string{"a", "", "b"}},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			if got := splitCommand(tc.in); !cmp.Equal(got, tc.want) {
				t.Errorf("splitCommand(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}
