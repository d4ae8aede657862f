// Command watchdog is the entrypoint of every function image kiln builds. It
// speaks the OpenFaaS of-watchdog contract, and the classic watchdog's, so
// the images deploy on OpenFaaS and on plain Kubernetes unchanged: it
// serves the function on port 8080, answers /_/health and /_/ready, writes
// a lock file for exec probes, drains on SIGTERM and exposes Prometheus
// metrics on port 8081: of-watchdog's http_* series and the go_* and
// process_* ones of Prometheus' Go client.
//
// It is built from the standard library only, as a static binary
// (CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=..."),
// because it is copied into images that may have no libc and no shell. Size
// matters for the same reason, which is why it reaches the function through
// its own small HTTP/1.1 client rather than http.Transport.
//
// # Modes
//
// The mode variable picks how a request reaches the function. With no mode
// the watchdog keeps the classic watchdog's contract, where of-watchdog
// would stream: that is how an image says which watchdog it was written
// for. Every of-watchdog template sets mode; a classic image (the classic
// go, node and python3 templates, a dockerfile function FROM the
// classic-watchdog image) ships the classic binary, which reads no mode, and
// so sets none. kiln's packs always set mode. mode=classic says the same
// explicitly.
//
//   - classic (no mode): fprocess is started per request, the whole body on
//     its stdin, its whole output the answer: 200 with X-Duration-Seconds and
//     content_type, else the caller's Content-Type; 500 with the error, a
//     newline and the output when it fails; 408 "Killed process." when
//     exec_timeout (default 0, off) kills it; 405 for methods other than GET,
//     POST, PUT, PATCH and DELETE. Http_* variables (cgi_headers, default
//     true) add Http_ContentLength, Http_Content_Length and Http_Host to
//     of-watchdog's. combine_output (true) puts stderr in the answer,
//     marshal_request (false) sends a JSON envelope of headers and body,
//     write_debug and debug_headers log the output and the headers; these
//     are on only when set to "true", as the classic watchdog reads them.
//     /_/ready is the function's, as there. Unlike the classic watchdog, an
//     exec_timeout kills the process group, and a caller that goes away
//     stops the process.
//
//   - http: fprocess is started once and every request is proxied to
//     upstream_url. /_/health says 200 only once the upstream accepts a TCP
//     connection, which of-watchdog does not wait for; ready_path, as there,
//     is only asked by /_/ready. If the process exits, so does the
//     watchdog, with status 1.
//
//   - streaming: fprocess is started per request; the body is its stdin and
//     its stdout is streamed back.
//
//   - serializing: as streaming, but the body and the output are buffered and
//     a non-zero exit gives 500.
//
//   - static: files under static_path are served.
//
// A request that exceeds exec_timeout gets 504 and an upstream that cannot be
// reached 500, both with X-OpenFaaS-Internal: of-watchdog. X-Timeout on a
// request can shorten exec_timeout, never lengthen it. Server-sent events,
// NDJSON streams and WebSocket upgrades are streamed and not subject to
// exec_timeout.
//
// # Environment
//
// fprocess (function_process wins), mode, upstream_url (http_upstream_url
// wins; an http:// URL, since the function runs next to the watchdog), port
// (8080), read_timeout, write_timeout and exec_timeout (30s each; integer
// seconds or a Go duration; an unparsable value keeps the default),
// healthcheck_interval (write_timeout), max_inflight (0, unlimited; excess
// requests get 429), prefix_logs (true), log_buffer_size (65536; -1 for no
// limit), buffer_http or http_buffer_req_body (false; either one set to true
// turns it on), content_type (application/octet-stream, forking modes only),
// suppress_lock (false), static_path (/home/app/public), ready_path (unset)
// and log_callid (false). The lock file is $TMPDIR/.lock, /tmp/.lock by
// default.
//
// jwt_auth=true (or 1) puts of-watchdog's JWT check in front of the function
// (not of /_/health and /_/ready): the issuer and its RSA and EC keys are
// read at start-up from the gateway's OpenID configuration,
// http://gateway.openfaas:8080/.well-known/openid-configuration, or
// http://127.0.0.1:8000/... with jwt_auth_local; a token must be signed by
// one of them, name the issuer as iss and in aud, be within exp and nbf, and
// grant OPENFAAS_NAMESPACE:OPENFAAS_NAME (the namespace defaults to the
// service account's) in its function claim. 401 and 403 answer as there.
// A missing name or namespace, or keys that cannot be read, stop the
// watchdog with one line: it never serves unauthenticated when asked not
// to. jwt_auth_debug logs the issuer and keys. jwt_auth_authority is a kiln
// extension: the URL of another OpenID configuration.
//
// metrics_port (8081) is a kiln extension: it moves the metrics listener,
// which of-watchdog fixes at 8081. So is bind_address (unset: every
// interface), the IP both listeners bind, which kiln's local gateway sets
// to 127.0.0.1 since its functions share the host's network.
//
// # SIGTERM
//
// The lock file is removed and health turns 503, the watchdog waits
// healthcheck_interval, lets in-flight requests finish within write_timeout,
// then, in http mode, sends SIGTERM to the function (SIGKILL 5s later) and
// exits 0. The function is signalled last so that it serves every request
// the watchdog accepted.
//
// # Flags and exit codes
//
//	-version          print the version and exit 0
//	-run-healthcheck  exit 0 if the lock file exists, 1 otherwise
//
// The watchdog exits 0 after a SIGTERM drain; 1 for a configuration error
// (one line, as of-watchdog exits 1 on one) and when it cannot start or keep
// serving (in http mode that includes the function process exiting); and 2
// for a wrong command line, as of-watchdog's flag parsing does.
package main
