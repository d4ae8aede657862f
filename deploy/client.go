package deploy

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Client talks to an OpenFaaS gateway's /system API.
type Client struct {
	gateway   string
	auth      Auth
	http      *http.Client
	userAgent string
	mode      Mode
}

// Mode is how Deploy sends a function: faas-cli's --update and --replace.
type Mode int

const (
	// Update sends PUT, then POST when the gateway answers 404 (the default).
	Update Mode = iota
	// Create sends POST only (--update=false).
	Create
	// Replace sends DELETE, then POST (--replace --update=false).
	Replace
)

// Option configures a Client.
type Option func(*clientOptions) error

type clientOptions struct {
	auth      Auth
	timeout   time.Duration
	insecure  bool
	transport http.RoundTripper
	userAgent string
	mode      Mode
}

// WithAuth sets the credentials. Default: none.
func WithAuth(a Auth) Option { return func(o *clientOptions) error { o.auth = a; return nil } }

// WithTimeout sets the timeout of each request (--timeout). Default: 60s,
// as faas-cli.
func WithTimeout(d time.Duration) Option {
	return func(o *clientOptions) error {
		if d <= 0 {
			return fmt.Errorf("timeout %s: want a positive duration", d)
		}
		o.timeout = d
		return nil
	}
}

// WithTLSNoVerify skips TLS certificate checks (--tls-no-verify).
// Default: checks on.
func WithTLSNoVerify() Option { return func(o *clientOptions) error { o.insecure = true; return nil } }

// WithTransport sets the HTTP transport. Default: http.DefaultTransport's
// settings.
func WithTransport(t http.RoundTripper) Option {
	return func(o *clientOptions) error { o.transport = t; return nil }
}

// WithUserAgent sets the User-Agent header. Default: "kiln".
func WithUserAgent(ua string) Option {
	return func(o *clientOptions) error { o.userAgent = ua; return nil }
}

// WithMode sets how Deploy sends a function. Default: Update.
func WithMode(m Mode) Option { return func(o *clientOptions) error { o.mode = m; return nil } }

// NewClient returns a client for the gateway URL (normalised).
func NewClient(gateway string, opts ...Option) (*Client, error) {
	o := clientOptions{timeout: 60 * time.Second, userAgent: "kiln"}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	t := o.transport
	if t == nil {
		dt := http.DefaultTransport.(*http.Transport).Clone()
		if o.insecure {
			dt.TLSClientConfig = &tls.Config{InsecureSkipVerify: true}
		}
		t = dt
	}
	return &Client{gateway: NormalizeURL(gateway), auth: o.auth, userAgent: o.userAgent, mode: o.mode, http: &http.Client{Timeout: o.timeout, Transport: t}}, nil
}

// Gateway returns the gateway URL the client talks to.
func (c *Client) Gateway() string { return c.gateway }

// StatusError is a gateway answer that is not a success.
type StatusError struct {
	Method, URL string
	Code        int
	Body        string
}

func (e *StatusError) Error() string {
	msg := fmt.Sprintf("%s %s: %d %s", e.Method, e.URL, e.Code, http.StatusText(e.Code))
	if e.Code == http.StatusUnauthorized {
		msg += " (log in with: faas-cli login --gateway " + strings.TrimSuffix(strings.SplitN(e.URL, "/system", 2)[0], "/") + ")"
	}
	if b := strings.TrimSpace(e.Body); b != "" {
		msg += ": " + b
	}
	return msg
}

func (c *Client) do(ctx context.Context, method, path string, body any) (*http.Response, []byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, nil, err
		}
		rd = bytes.NewReader(b)
	}
	url := c.gateway + path
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return nil, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("User-Agent", c.userAgent)
	switch {
	case c.auth.Basic != "":
		req.Header.Set("Authorization", "Basic "+c.auth.Basic)
	case c.auth.Bearer != "":
		req.Header.Set("Authorization", "Bearer "+c.auth.Bearer)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, nil, fmt.Errorf("%s %s: %w", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, nil, fmt.Errorf("%s %s: reading the answer: %w", method, url, err)
	}
	return resp, b, nil
}

func ok(code int) bool {
	return code == http.StatusOK || code == http.StatusCreated || code == http.StatusAccepted
}

// Deploy sends the function as faas-cli deploy does in the client's mode:
// by default it updates it with PUT and creates it with POST when the
// gateway answers 404. It returns the final status.
func (c *Client) Deploy(ctx context.Context, d *Deployment) (int, error) {
	method := http.MethodPut
	switch c.mode {
	case Create:
		method = http.MethodPost
	case Replace:
		// A function that is not there yet has nothing to replace.
		if err := c.Delete(ctx, d.Service, d.Namespace); err != nil && !isNotFound(err) {
			return 0, fmt.Errorf("replacing: %w", err)
		}
		method = http.MethodPost
	}
	resp, body, err := c.do(ctx, method, "/system/functions", d)
	if err != nil {
		return 0, err
	}
	if resp.StatusCode == http.StatusNotFound && method == http.MethodPut {
		if resp, body, err = c.do(ctx, http.MethodPost, "/system/functions", d); err != nil {
			return 0, err
		}
	}
	if !ok(resp.StatusCode) {
		return resp.StatusCode, &StatusError{Method: resp.Request.Method, URL: resp.Request.URL.String(), Code: resp.StatusCode, Body: string(body)}
	}
	return resp.StatusCode, nil
}

// Delete removes a function.
func (c *Client) Delete(ctx context.Context, name, namespace string) error {
	resp, body, err := c.do(ctx, http.MethodDelete, "/system/functions", map[string]string{"functionName": name, "namespace": namespace})
	if err != nil {
		return err
	}
	if !ok(resp.StatusCode) {
		return &StatusError{Method: http.MethodDelete, URL: resp.Request.URL.String(), Code: resp.StatusCode, Body: string(body)}
	}
	return nil
}

func isNotFound(err error) bool {
	var se *StatusError
	return errors.As(err, &se) && se.Code == http.StatusNotFound
}

// Status is the gateway's FunctionStatus, as far as kiln reads it.
type Status struct {
	Name              string             `json:"name"`
	Image             string             `json:"image"`
	Namespace         string             `json:"namespace,omitempty"`
	EnvProcess        string             `json:"envProcess,omitempty"`
	EnvVars           map[string]string  `json:"envVars,omitempty"`
	Labels            *map[string]string `json:"labels,omitempty"`
	Annotations       *map[string]string `json:"annotations,omitempty"`
	InvocationCount   float64            `json:"invocationCount"`
	Replicas          uint64             `json:"replicas"`
	AvailableReplicas uint64             `json:"availableReplicas"`
	CreatedAt         time.Time          `json:"createdAt"`
}

// List returns the deployed functions.
func (c *Client) List(ctx context.Context) ([]Status, error) {
	resp, body, err := c.do(ctx, http.MethodGet, "/system/functions", nil)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, &StatusError{Method: http.MethodGet, URL: resp.Request.URL.String(), Code: resp.StatusCode, Body: string(body)}
	}
	var out []Status
	if err := json.Unmarshal(body, &out); err != nil {
		return nil, fmt.Errorf("reading the function list: %w", err)
	}
	return out, nil
}

// FunctionURL is where the gateway serves the function, as faas-cli prints
// it.
func (c *Client) FunctionURL(name, namespace string) string {
	if namespace != "" {
		return c.gateway + "/function/" + name + "." + namespace
	}
	return c.gateway + "/function/" + name
}

// InferredOpenAPI returns the OpenAPI fragment kiln's local gateway
// inferred from the calls of function name (GET
// /system/openapi.json?inferred=NAME).
func (c *Client) InferredOpenAPI(ctx context.Context, name string) ([]byte, error) {
	resp, body, err := c.do(ctx, http.MethodGet, "/system/openapi.json?inferred="+url.QueryEscape(name), nil)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, &StatusError{Method: http.MethodGet, URL: resp.Request.URL.String(), Code: resp.StatusCode, Body: string(body)}
	}
	return body, nil
}
