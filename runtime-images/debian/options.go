package debian

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Default locations, used when no option says otherwise.
const (
	// DefaultMirror is the official Debian archive.
	DefaultMirror = "http://deb.debian.org/debian"
	// DefaultSecurityMirror is the official Debian security archive.
	DefaultSecurityMirror = "http://deb.debian.org/debian-security"
	// DefaultKeyring is where the debian-archive-keyring package installs
	// the keys that sign the archive.
	DefaultKeyring = "/usr/share/keyrings/debian-archive-keyring.gpg"
)

// Option configures a Fetcher.
type Option func(*options) error

type options struct {
	mirror         string
	securityMirror string
	keyring        string
	client         *http.Client
	retries        int
	backoff        time.Duration
	now            func() time.Time
}

func defaultOptions() options {
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.ResponseHeaderTimeout = 30 * time.Second
	return options{
		mirror:         DefaultMirror,
		securityMirror: DefaultSecurityMirror,
		keyring:        DefaultKeyring,
		client:         &http.Client{Transport: transport},
		retries:        3,
		backoff:        500 * time.Millisecond,
		now:            time.Now,
	}
}

// WithMirror sets the base URL of the Debian archive, the directory that
// holds dists/ and pool/. The default is [DefaultMirror].
func WithMirror(u string) Option {
	return func(o *options) error {
		m, err := mirrorURL(u)
		if err != nil {
			return err
		}
		o.mirror = m
		return nil
	}
}

// WithSecurityMirror sets the base URL of the Debian security archive,
// which serves every suite whose name ends in "-security". The default is
// [DefaultSecurityMirror].
func WithSecurityMirror(u string) Option {
	return func(o *options) error {
		m, err := mirrorURL(u)
		if err != nil {
			return err
		}
		o.securityMirror = m
		return nil
	}
}

// WithKeyring sets the OpenPGP keyring, binary or armored, that Release
// files must be signed with. The default is [DefaultKeyring]. Only reading
// indexes needs it: downloading pinned packages does not.
func WithKeyring(path string) Option {
	return func(o *options) error {
		if path == "" {
			return fmt.Errorf("keyring path is empty")
		}
		o.keyring = path
		return nil
	}
}

// WithHTTPClient sets the client every request goes through. The default
// is a client on a clone of http.DefaultTransport that gives up on a server
// silent for 30 seconds.
func WithHTTPClient(c *http.Client) Option {
	return func(o *options) error {
		if c == nil {
			return fmt.Errorf("http client is nil")
		}
		o.client = c
		return nil
	}
}

// WithRetries sets how many times a request that failed on the network or
// with a 5xx or 429 status is tried again. The default is 3.
func WithRetries(n int) Option {
	return func(o *options) error {
		if n < 0 {
			return fmt.Errorf("retries = %d, want 0 or more", n)
		}
		o.retries = n
		return nil
	}
}

// WithBackoff sets the wait before the first retry; each further retry
// waits twice as long. The default is 500ms.
func WithBackoff(d time.Duration) Option {
	return func(o *options) error {
		if d < 0 {
			return fmt.Errorf("backoff = %s, want 0 or more", d)
		}
		o.backoff = d
		return nil
	}
}

// WithClock sets the clock that Release expiry (Valid-Until) and key
// expiry are checked against. The default is time.Now.
func WithClock(now func() time.Time) Option {
	return func(o *options) error {
		if now == nil {
			return fmt.Errorf("clock is nil")
		}
		o.now = now
		return nil
	}
}

func mirrorURL(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil {
		return "", fmt.Errorf("mirror URL %q: %w", s, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return "", fmt.Errorf("mirror URL %q: want http:// or https:// and a host", s)
	}
	return strings.TrimSuffix(u.String(), "/"), nil
}
