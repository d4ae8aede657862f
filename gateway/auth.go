package gateway

import (
	"crypto/subtle"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// DefaultUser is the user of the gateway's basic auth, as OpenFaaS's
// Helm chart and faasd name it.
const DefaultUser = "admin"

// basicAuth is the login /system/* and /ui/ ask for.
type basicAuth struct {
	user, password string
}

// WithBasicAuth makes /system/* and /ui/ ask for HTTP basic auth with this
// user and password, as OpenFaaS's gateway does with basic_auth=true;
// /function/*, /async-function/* and /healthz stay open. Default: no
// login asked.
func WithBasicAuth(user, password string) Option {
	return func(g *Gateway) { g.auth = &basicAuth{user: user, password: password} }
}

// WithAllowedHosts adds names the gateway answers to, as NAME (on the
// gateway's own port) or NAME:PORT, besides 127.0.0.1, localhost and
// [::1] on its port. Any other Host header gets 403, so that a web page
// cannot reach the gateway through a name of its own (DNS rebinding).
func WithAllowedHosts(hosts ...string) Option {
	return func(g *Gateway) { g.hosts = append(g.hosts, hosts...) }
}

// loopbackNames are the names the gateway always answers to.
var loopbackNames = []string{"127.0.0.1", "localhost", "::1"}

// splitHost splits a Host header or an origin's host into a lower-case
// name, without brackets, and a port, defaultPort when it has none.
func splitHost(hostport, defaultPort string) (string, string) {
	hostport = strings.ToLower(hostport)
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		host, port = strings.TrimSuffix(strings.TrimPrefix(hostport, "["), "]"), defaultPort
	}
	return host, port
}

// allowedHost reports whether hostport (a Host header, or an origin's
// host with the port its scheme implies) names this gateway: a loopback
// name or an allowed host, on the port the request came in on. Without a
// local address (a handler called directly), any port is the gateway's.
func (g *Gateway) allowedHost(r *http.Request, hostport, defaultPort string) bool {
	host, port := splitHost(hostport, defaultPort)
	if host == "" {
		return false
	}
	ownPort := port
	if a, ok := r.Context().Value(http.LocalAddrContextKey).(*net.TCPAddr); ok {
		ownPort = strconv.Itoa(a.Port)
	}
	for _, name := range loopbackNames {
		if host == name && port == ownPort {
			return true
		}
	}
	for _, h := range g.hosts {
		name, p := splitHost(h, ownPort)
		if host == name && port == p {
			return true
		}
	}
	return false
}

// sameOrigin reports whether a browser, if it sent r, sent it from a page
// of this gateway: Sec-Fetch-Site, when present, says same-origin or none
// (typed by the user), and Origin, when present, names this gateway.
// Tools such as faas-cli and curl send neither.
func (g *Gateway) sameOrigin(r *http.Request) bool {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {
		return false
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil || u.Scheme != "http" || u.Host == "" {
		return false // "null", https or garbage: not a page of this gateway
	}
	return g.allowedHost(r, u.Host, "80")
}

// guardHosts answers 403 to a request whose Host is not the gateway's.
func (g *Gateway) guardHosts(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !g.allowedHost(r, r.Host, "80") {
			http.Error(w, "host "+strconv.Quote(r.Host)+" is not this gateway's: call it as 127.0.0.1, localhost or [::1], or allow the name with --allowed-host", http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// protect guards an API handler of /system/* or /ui/: 403 to a request
// from another site's page, then 401, as OpenFaaS answers it, to one
// without the login.
func (g *Gateway) protect(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !g.sameOrigin(r) {
			http.Error(w, "cross-origin requests to the gateway's API are refused", http.StatusForbidden)
			return
		}
		if g.auth != nil && !g.auth.check(r) {
			w.Header().Set("WWW-Authenticate", `Basic realm="Restricted"`)
			http.Error(w, "invalid credentials", http.StatusUnauthorized)
			return
		}
		next(w, r)
	}
}

// check compares r's basic login with a's in constant time.
func (a *basicAuth) check(r *http.Request) bool {
	user, password, ok := r.BasicAuth()
	userOK := subtle.ConstantTimeCompare([]byte(user), []byte(a.user))
	passwordOK := subtle.ConstantTimeCompare([]byte(password), []byte(a.password))
	return ok && userOK&passwordOK == 1
}
