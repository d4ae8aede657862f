package contract

import "strconv"

// AppDir is the function's folder and the working directory of every image:
// the bases create it, owned by the function's user, and the packs put the
// function below it. It is written without the leading slash, as layer
// paths are; an image config names it "/" + AppDir.
const AppDir = "home/app"

// The function's user. Every base's /etc/passwd names the ID twice:
// nonroot, as distroless images do, and app, as the OpenFaaS templates do.
const (
	UID = 65532
	GID = 65532
	// User is the image config's user: numeric, so that Kubernetes can
	// check runAsNonRoot without reading /etc/passwd.
	User = "65532:65532"
)

// WatchdogPath is where every image carries the watchdog, its entrypoint.
const WatchdogPath = "/usr/bin/fwatchdog"

// HealthPath is the watchdog's health endpoint: 200 once the function's
// process is up. Kubernetes probes it, as faas-netes sets them.
const HealthPath = "/_/health"

// ReadyPath is the watchdog's readiness endpoint: 503 while unhealthy,
// 429 at max_inflight, else the answer of the function's ready_path when
// set. The local gateway routes only to instances whose ReadyPath answers
// 200 (but for classic images, whose /_/ready is the function's).
const ReadyPath = "/_/ready"

// Path is the PATH of every base, Debian's default.
const Path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Ports.
const (
	// WatchdogPort is the port the watchdog serves the function on: the
	// image's exposed port, the probes' and the Service's.
	WatchdogPort = 8080
	// UpstreamPort is where kiln's Go and Java servers listen behind the
	// watchdog, as of-watchdog's Go templates do. Node and Python keep
	// their templates' own ports.
	UpstreamPort = 8082
)

// Names of the environment variables the watchdog reads.
const (
	// EnvFProcess is the command the watchdog starts.
	EnvFProcess = "fprocess"
	// EnvMode is how the watchdog hands requests to the function.
	EnvMode = "mode"
	// EnvUpstreamURL is where the watchdog sends requests in http mode.
	EnvUpstreamURL = "upstream_url"
	// EnvPrefixLogs says whether the watchdog prefixes the function's
	// output lines with their stream's name.
	EnvPrefixLogs = "prefix_logs"
	// EnvPort is the port the watchdog listens on.
	EnvPort = "port"
)

// RawLogs is the environment entry that makes the watchdog pass the
// function's output on as it is: kiln's servers write whole log lines of
// their own.
const RawLogs = EnvPrefixLogs + "=false"

// FProcess returns the environment entry that makes the watchdog start
// command.
func FProcess(command string) string { return EnvFProcess + "=" + command }

// HTTPMode returns the environment entries that make the watchdog proxy
// every request to a server the function runs on 127.0.0.1:port.
func HTTPMode(port int) []string {
	return []string{EnvMode + "=http", EnvUpstreamURL + "=http://127.0.0.1:" + strconv.Itoa(port)}
}

// ClassicMode returns the environment entries that make the watchdog start
// fprocess once per request, with the request body on its stdin and its
// stdout as the response: the contract of OpenFaaS's classic watchdog. As
// the classic templates do, it sets no mode: that is how the watchdog
// tells a classic image.
func ClassicMode() []string { return nil }

// JavaTrustStore is where the java base keeps a JKS trust store of its CA
// bundle's certificates, and what the Java pack links the runtime's
// lib/security/cacerts to. Without the leading slash.
const JavaTrustStore = "etc/ssl/certs/java/cacerts"
