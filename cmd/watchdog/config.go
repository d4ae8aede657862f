package main

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// mode is how the watchdog hands a request to the function.
type mode string

const (
	modeHTTP        mode = "http"
	modeStreaming   mode = "streaming"
	modeSerializing mode = "serializing"
	modeStatic      mode = "static"
	// modeClassic is the classic watchdog's contract: a process per
	// request, the whole answer buffered, and the classic settings. It
	// has no value of mode: an image says it was written for the classic
	// watchdog by setting none (see loadConfig).
	modeClassic mode = "classic"
)

const (
	defaultPort          = 8080
	defaultMetricsPort   = 8081
	defaultTimeout       = 30 * time.Second
	defaultContentType   = "application/octet-stream"
	defaultStaticPath    = "/home/app/public"
	defaultLogBufferSize = 64 * 1024 // bufio.MaxScanTokenSize, what of-watchdog uses

	// The JWT check's authority: the in-cluster gateway, or with
	// jwt_auth_local one port-forwarded to this host, as of-watchdog has.
	jwtAuthority      = "http://gateway.openfaas:8080/.well-known/openid-configuration"
	jwtLocalAuthority = "http://127.0.0.1:8000/.well-known/openid-configuration"
	// serviceAccountNamespace is where Kubernetes says the pod's namespace,
	// read when OPENFAAS_NAMESPACE is not set.
	serviceAccountNamespace = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"
)

// config is the watchdog's settings, read once from the environment.
type config struct {
	mode                mode
	process             string
	upstreamURL         string
	bindAddress         string
	port                int
	metricsPort         int
	readTimeout         time.Duration
	writeTimeout        time.Duration
	execTimeout         time.Duration
	healthcheckInterval time.Duration
	maxInflight         int
	prefixLogs          bool
	logBufferSize       int
	bufferHTTP          bool
	contentType         string
	suppressLock        bool
	staticPath          string
	readyPath           string
	logCallID           bool
	// functionName labels kiln's series: OPENFAAS_NAME.OPENFAAS_NAMESPACE
	// (or the pod's namespace), as OpenFaaS's gateway names functions;
	// "" when OPENFAAS_NAME is not set.
	functionName string

	// The classic watchdog's settings, read in classic mode only.
	combineOutput  bool // stderr in the answer (default true)
	cgiHeaders     bool // Http_* variables (default true)
	marshalRequest bool // a JSON envelope of headers and body on stdin
	writeDebug     bool // the function's output in the logs
	debugHeaders   bool // request and response headers in the logs

	jwt jwtConfig
}

// jwtConfig is what the JWT check needs: jwt_auth and the function it
// guards, OPENFAAS_NAME in the namespace OPENFAAS_NAMESPACE (else the pod's
// service-account namespace).
type jwtConfig struct {
	enabled   bool
	debug     bool
	authority string // the OpenID configuration's URL
	name      string
	namespace string
}

// configError is a setting the watchdog cannot run with; it names the
// variable so the user knows which line of their stack file to fix.
type configError struct {
	name, value, reason string
}

func (e *configError) Error() string {
	if e.value == "" {
		return fmt.Sprintf("%s: %s", e.name, e.reason)
	}
	return fmt.Sprintf("%s=%q: %s", e.name, e.value, e.reason)
}

// loadConfig reads the settings through lookup (os.LookupEnv in production).
// Values that of-watchdog tolerates by falling back to a default are
// tolerated here too, but reported in the returned warnings so the fallback
// is visible in the logs.
func loadConfig(lookup func(string) (string, bool)) (config, []string, error) {
	var warnings []string
	warn := func(format string, args ...any) {
		warnings = append(warnings, fmt.Sprintf(format, args...))
	}
	get := func(name string) string {
		v, _ := lookup(name)
		return v
	}
	// first returns the value of the first set, non-empty variable, so
	// that the alias listed first wins.
	first := func(names ...string) string {
		for _, n := range names {
			if v := get(n); v != "" {
				return v
			}
		}
		return ""
	}
	duration := func(name string, def time.Duration) time.Duration {
		v, ok := lookup(name)
		if !ok || v == "" {
			return def
		}
		d, err := parseDuration(v)
		if err != nil {
			warn("%s=%q is not a duration, using %s", name, v, def)
			return def
		}
		return d
	}
	integer := func(name string, def int) int {
		v, ok := lookup(name)
		if !ok || v == "" {
			return def
		}
		n, err := strconv.Atoi(v)
		if err != nil {
			warn("%s=%q is not an integer, using %d", name, v, def)
			return def
		}
		return n
	}

	c := config{
		mode:          modeClassic,
		process:       first("function_process", "fprocess"),
		upstreamURL:   strings.TrimRight(first("http_upstream_url", "upstream_url"), "/"),
		readTimeout:   duration("read_timeout", defaultTimeout),
		writeTimeout:  duration("write_timeout", defaultTimeout),
		execTimeout:   duration("exec_timeout", defaultTimeout),
		maxInflight:   integer("max_inflight", 0),
		logBufferSize: defaultLogBufferSize,
		prefixLogs:    true,
		bufferHTTP:    parseFlag(get("buffer_http")) || parseFlag(get("http_buffer_req_body")),
		contentType:   defaultContentType,
		suppressLock:  parseFlag(get("suppress_lock")),
		staticPath:    defaultStaticPath,
		readyPath:     get("ready_path"),
	}
	c.healthcheckInterval = duration("healthcheck_interval", c.writeTimeout)

	// Which watchdog the image was written for. Every of-watchdog template
	// sets mode (http, or streaming for bash-streaming); a classic image
	// ships the classic watchdog's binary, which reads no mode, and so sets
	// none. No mode therefore means the classic contract, where of-watchdog
	// would fall back to streaming: it is how a classic image chooses its
	// watchdog, and kiln's packs always set mode.
	if v := get("mode"); v != "" {
		c.mode = mode(v)
	}
	if v := get("content_type"); v != "" {
		c.contentType = v
	}
	if c.mode == modeClassic {
		// classicFlag is the classic watchdog's boolean: set and "true".
		classicFlag := func(name string, def bool) bool {
			v := get(name)
			if v == "" {
				return def
			}
			return v == "true"
		}
		// No hard timeout, and the caller's Content-Type echoed back,
		// unless set.
		c.execTimeout = duration("exec_timeout", 0)
		c.contentType = get("content_type")
		c.combineOutput = classicFlag("combine_output", true)
		c.cgiHeaders = classicFlag("cgi_headers", true)
		c.marshalRequest = classicFlag("marshal_request", false)
		c.writeDebug = classicFlag("write_debug", false)
		c.debugHeaders = classicFlag("debug_headers", false)
	}
	if v := get("static_path"); v != "" {
		c.staticPath = v
	}
	if v := get("prefix_logs"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			warn("prefix_logs=%q is not a boolean, using true", v)
		} else {
			c.prefixLogs = b
		}
	}
	if v := get("log_callid"); v != "" {
		// ParseBool already accepts "1", the other spelling of-watchdog takes.
		c.logCallID, _ = strconv.ParseBool(v)
	}
	if v := get("log_buffer_size"); v != "" {
		// As of-watchdog: a size that is not a number stops the watchdog.
		n, err := strconv.Atoi(v)
		if err != nil {
			return config{}, warnings, &configError{"log_buffer_size", v, "want a number of bytes, or -1 for no limit"}
		}
		c.logBufferSize = n
	}
	if c.logBufferSize == 0 || c.logBufferSize < -1 {
		warn("log_buffer_size=%d is not a size, using %d", c.logBufferSize, defaultLogBufferSize)
		c.logBufferSize = defaultLogBufferSize
	}
	if c.maxInflight < 0 {
		warn("max_inflight=%d is negative, using 0 (unlimited)", c.maxInflight)
		c.maxInflight = 0
	}
	var err error
	if c.jwt, err = loadJWTConfig(lookup); err != nil {
		return config{}, warnings, err
	}
	if name := get("OPENFAAS_NAME"); name != "" {
		c.functionName = name
		ns, ok := lookup("OPENFAAS_NAMESPACE")
		if !ok {
			data, _ := os.ReadFile(serviceAccountNamespace)
			ns = strings.TrimSpace(string(data))
		}
		if ns != "" {
			c.functionName += "." + ns
		}
	}

	// A malformed port would make of-watchdog listen on a random one; kiln
	// refuses it instead, because nothing could reach the function there.
	if c.port, err = parsePort("port", get("port"), defaultPort); err != nil {
		return config{}, warnings, err
	}
	if c.metricsPort, err = parsePort("metrics_port", get("metrics_port"), defaultMetricsPort); err != nil {
		return config{}, warnings, err
	}
	if c.bindAddress = get("bind_address"); c.bindAddress != "" && net.ParseIP(c.bindAddress) == nil {
		return config{}, warnings, &configError{"bind_address", c.bindAddress, "want an IP address, e.g. 127.0.0.1"}
	}
	if err := c.validate(); err != nil {
		return config{}, warnings, err
	}
	return c, warnings, nil
}

// loadJWTConfig reads jwt_auth's settings. Asked for, the check must be able
// to run: a name or a namespace missing is an error, never a watchdog that
// serves unauthenticated. jwt_auth_authority, a kiln extension, moves the
// authority (default: the gateway of-watchdog asks).
func loadJWTConfig(lookup func(string) (string, bool)) (jwtConfig, error) {
	get := func(name string) string {
		v, _ := lookup(name)
		return v
	}
	if !parseFlag(get("jwt_auth")) {
		return jwtConfig{}, nil
	}
	j := jwtConfig{enabled: true, debug: parseFlag(get("jwt_auth_debug")), authority: jwtAuthority}
	if parseFlag(get("jwt_auth_local")) {
		j.authority = jwtLocalAuthority
	}
	if v := get("jwt_auth_authority"); v != "" {
		u, err := url.Parse(v)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return j, &configError{"jwt_auth_authority", v, "want the http:// or https:// URL of an OpenID configuration"}
		}
		j.authority = v
	}
	if j.name = get("OPENFAAS_NAME"); j.name == "" {
		return j, &configError{"OPENFAAS_NAME", "", "required by jwt_auth=true: the function's name, which tokens must grant"}
	}
	ns, ok := lookup("OPENFAAS_NAMESPACE")
	if !ok {
		data, err := os.ReadFile(serviceAccountNamespace)
		if err != nil {
			return j, &configError{"OPENFAAS_NAMESPACE", "", fmt.Sprintf("required by jwt_auth=true when %s cannot be read (%v)", serviceAccountNamespace, err)}
		}
		ns = string(data)
	}
	j.namespace = ns
	return j, nil
}

func (c config) validate() error {
	switch c.mode {
	case modeHTTP, modeStreaming, modeSerializing, modeStatic, modeClassic:
	case "inproc", "afterburn":
		return &configError{"mode", string(c.mode), "not supported by kiln's watchdog (want http, streaming, serializing or static, or no mode for the classic watchdog's)"}
	default:
		return &configError{"mode", string(c.mode), "unknown mode (want http, streaming, serializing or static, or no mode for the classic watchdog's)"}
	}
	if c.writeTimeout <= 0 {
		return &configError{"write_timeout", c.writeTimeout.String(), "must be greater than 0"}
	}
	if c.mode != modeStatic && c.process == "" {
		return &configError{"fprocess", "", fmt.Sprintf("required in %s mode", c.mode)}
	}
	if c.mode == modeHTTP {
		if c.upstreamURL == "" {
			return &configError{"upstream_url", "", "required in http mode"}
		}
		u, err := url.Parse(c.upstreamURL)
		// The function's server runs next to the watchdog, so plain HTTP
		// is all the watchdog speaks to it.
		if err != nil || u.Scheme != "http" || u.Host == "" {
			return &configError{"upstream_url", c.upstreamURL, "want an http://host:port URL"}
		}
	}
	if c.readyPath != "" {
		if _, err := url.ParseRequestURI(c.readyPath); err != nil || !strings.HasPrefix(c.readyPath, "/") {
			return &configError{"ready_path", c.readyPath, "want a path starting with /"}
		}
	}
	return nil
}

// parseDuration reads an integer as seconds, else a Go duration, as
// of-watchdog does.
func parseDuration(s string) (time.Duration, error) {
	if n, err := strconv.Atoi(s); err == nil {
		return time.Duration(n) * time.Second, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("parsing duration %q: %w", s, err)
	}
	return d, nil
}

// parseFlag is of-watchdog's strict boolean: only "true" and "1" turn a
// setting on, so that a typo leaves it off.
func parseFlag(s string) bool {
	return s == "true" || s == "1"
}

func parsePort(name, s string, def int) (int, error) {
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 65535 {
		return 0, &configError{name, s, "want a TCP port number"}
	}
	return n, nil
}

// splitCommand splits fprocess on single spaces, without a shell or quoting,
// so that the same fprocess runs the same argv as under of-watchdog.
func splitCommand(s string) []string {
	return strings.Split(s, " ")
}
