package main

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"log"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// testIssuer is a gateway that issues function tokens: its OpenID
// configuration, its keys (kid r1: RSA, e1: EC P-256), and a signer.
type testIssuer struct {
	srv *httptest.Server
	rsa *rsa.PrivateKey
	ec  *ecdsa.PrivateKey
}

func newTestIssuer(t *testing.T) *testIssuer {
	t.Helper()
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ek, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ekb, err := ek.PublicKey.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	b64 := base64.RawURLEncoding.EncodeToString
	iss := &testIssuer{rsa: rk, ec: ek}
	keys := map[string]any{"keys": []any{
		map[string]string{"kty": "RSA", "kid": "r1", "use": "sig", "n": b64(rk.N.Bytes()), "e": b64(big.NewInt(int64(rk.E)).Bytes())},
		map[string]string{"kty": "EC", "kid": "e1", "crv": "P-256", "x": b64(ekb[1:33]), "y": b64(ekb[33:])},
		map[string]string{"kty": "OKP", "kid": "o1", "crv": "Ed25519", "x": b64(make([]byte, 32))},
	}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]string{"issuer": iss.url(), "jwks_uri": iss.url() + "/.well-known/jwks.json"})
	})
	mux.HandleFunc("GET /.well-known/jwks.json", func(w http.ResponseWriter, r *http.Request) {
		if ua := r.Header.Get("User-Agent"); ua != "openfaas-watchdog" {
			http.Error(w, "User-Agent "+ua, http.StatusBadRequest)
			return
		}
		_ = json.NewEncoder(w).Encode(keys)
	})
	iss.srv = httptest.NewServer(mux)
	t.Cleanup(iss.srv.Close)
	return iss
}

func (i *testIssuer) url() string       { return i.srv.URL }
func (i *testIssuer) authority() string { return i.srv.URL + "/.well-known/openid-configuration" }

// claims are a valid token's for openfaas-fn:fn1, changed by edit; a nil
// value removes a claim.
func (i *testIssuer) claims(edit map[string]any) map[string]any {
	now := time.Now().Unix()
	c := map[string]any{
		"iss": i.url(), "aud": []string{i.url()}, "exp": now + 3600, "iat": now, "sub": "caller",
		"function": map[string]any{"permissions": []string{"openfaas-fn:fn1"}},
	}
	for k, v := range edit {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return c
}

// sign makes a token with alg RS256 or ES256 and kid (none when empty).
func (i *testIssuer) sign(t *testing.T, alg, kid string, claims map[string]any) string {
	t.Helper()
	header := map[string]any{"alg": alg, "typ": "JWT"}
	if kid != "" {
		header["kid"] = kid
	}
	signed := segment(t, header) + "." + segment(t, claims)
	digest := sha256.Sum256([]byte(signed))
	var sig []byte
	switch alg {
	case "RS256":
		var err error
		if sig, err = rsa.SignPKCS1v15(rand.Reader, i.rsa, crypto.SHA256, digest[:]); err != nil {
			t.Fatal(err)
		}
	case "ES256":
		r, s, err := ecdsa.Sign(rand.Reader, i.ec, digest[:])
		if err != nil {
			t.Fatal(err)
		}
		sig = make([]byte, 64)
		r.FillBytes(sig[:32])
		s.FillBytes(sig[32:])
	default:
		sig = []byte("sig")
	}
	return signed + "." + base64.RawURLEncoding.EncodeToString(sig)
}

func segment(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// TestJWTAuth: each case's answer is the one of-watchdog 0.11.6 gave for the
// same token (status, X-OpenFaaS-Internal, WWW-Authenticate, body), but for
// "a permission matching part of the name", where faas-middleware's
// unanchored pattern lets the token through and kiln does not (README).
func TestJWTAuth(t *testing.T) {
	iss := newTestIssuer(t)
	fn := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "auth="+r.Header.Get("X-Auth-Seconds"))
	})
	cfg := jwtConfig{enabled: true, authority: iss.authority(), name: "fn1", namespace: "openfaas-fn"}
	auth, err := newJWTAuth(context.Background(), cfg, log.New(io.Discard, "", 0), fn)
	if err != nil {
		t.Fatalf("newJWTAuth() = %v", err)
	}
	perms := func(p ...string) map[string]any {
		return map[string]any{"function": map[string]any{"permissions": p}}
	}
	past := time.Now().Unix() - 60
	valid := iss.sign(t, "RS256", "r1", iss.claims(nil))
	const denied = "failed to parse JWT token: "
	tests := []struct {
		name     string
		auth     string // Authorization header
		wantCode int
		wantBody string
	}{
		{"no Authorization", "", 401, "Bearer must be present in Authorization header"},
		{"Basic credentials", "Basic YTpi", 401, denied + "token is malformed: token contains an invalid number of segments"},
		{"RS256", "Bearer " + valid, 200, "auth="},
		{"ES256", "Bearer " + iss.sign(t, "ES256", "e1", iss.claims(nil)), 200, "auth="},
		{"wildcard permission", "Bearer " + iss.sign(t, "RS256", "r1", iss.claims(perms("openfaas-fn:*"))), 200, "auth="},
		{"star permission", "Bearer " + iss.sign(t, "RS256", "r1", iss.claims(perms("*"))), 200, "auth="},
		{"another function", "Bearer " + iss.sign(t, "RS256", "r1", iss.claims(perms("openfaas-fn:other"))), 403, "insufficient permissions"},
		{"a permission matching part of the name", "Bearer " + iss.sign(t, "RS256", "r1", iss.claims(perms("fn:fn"))), 403, "insufficient permissions"},
		{"no function claim", "Bearer " + iss.sign(t, "RS256", "r1", iss.claims(map[string]any{"function": nil})), 403, "insufficient permissions"},
		{"function audience elsewhere", "Bearer " + iss.sign(t, "RS256", "r1", iss.claims(map[string]any{
			"function": map[string]any{"permissions": []string{"*"}, "audience": []string{"openfaas-fn:other"}},
		})), 403, "insufficient permissions"},
		{"expired", "Bearer " + iss.sign(t, "RS256", "r1", iss.claims(map[string]any{"exp": past})), 401, denied + "token has invalid claims: token is expired"},
		{"not valid yet", "Bearer " + iss.sign(t, "RS256", "r1", iss.claims(map[string]any{"nbf": past + 660})), 401, denied + "token has invalid claims: token is not valid yet"},
		{"another issuer", "Bearer " + iss.sign(t, "RS256", "r1", iss.claims(map[string]any{"iss": "http://evil"})), 401, denied + "token has invalid claims: token has invalid issuer"},
		{"no audience", "Bearer " + iss.sign(t, "RS256", "r1", iss.claims(map[string]any{"aud": nil})), 401, denied + "token has invalid claims: token is missing required claim: aud claim is required"},
		{"another audience and expired", "Bearer " + iss.sign(t, "RS256", "r1", iss.claims(map[string]any{"aud": "x", "exp": past})), 401, denied + "token has invalid claims: token is expired, token has invalid audience"},
		{"unknown kid", "Bearer " + iss.sign(t, "RS256", "zz", iss.claims(nil)), 401, denied + "token is unverifiable: error while executing keyfunc: invalid kid: zz"},
		{"no kid", "Bearer " + iss.sign(t, "RS256", "", iss.claims(nil)), 401, denied + "token is unverifiable: error while executing keyfunc: invalid kid: <nil>"},
		{"RS256 naming the EC key", "Bearer " + iss.sign(t, "RS256", "e1", iss.claims(nil)), 401, denied + "token signature is invalid: key is of invalid type: RSA verify expects *rsa.PublicKey"},
		{"signature altered", "Bearer " + valid[:len(valid)-8] + "AAAAAAAA", 401, denied + "token signature is invalid: crypto/rsa: verification error"},
		{"HS256", "Bearer " + iss.sign(t, "HS256", "r1", iss.claims(nil)), 401, denied + "token signature is invalid: key is of invalid type: HMAC verify expects []byte"},
		{"alg none", "Bearer " + iss.sign(t, "none", "r1", iss.claims(nil)), 401, denied + "token signature is invalid: token is unverifiable: 'none' signature type is not allowed"},
		{"EdDSA with an OKP key", "Bearer " + iss.sign(t, "EdDSA", "o1", iss.claims(nil)), 401, denied + "token signature is invalid: key is of invalid type: Ed25519 verify expects ed25519.PublicKey"},
		{"unknown alg", "Bearer " + iss.sign(t, "XX1", "r1", iss.claims(nil)), 401, denied + "token is unverifiable: signing method (alg) is unavailable"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader("x"))
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			rec := httptest.NewRecorder()
			auth.ServeHTTP(rec, req)
			body := strings.TrimSuffix(rec.Body.String(), "\n")
			if rec.Code != tc.wantCode {
				t.Errorf("status = %d (%q), want %d", rec.Code, body, tc.wantCode)
			}
			if tc.wantCode == 200 {
				if !strings.HasPrefix(body, tc.wantBody) || len(body) == len(tc.wantBody) {
					t.Errorf("body = %q, want the function's answer with X-Auth-Seconds", body)
				}
				return
			}
			if body != tc.wantBody {
				t.Errorf("body = %q, want %q", body, tc.wantBody)
			}
			if got := rec.Header().Get("X-OpenFaaS-Internal"); got != "faas-middleware" {
				t.Errorf("X-OpenFaaS-Internal = %q, want faas-middleware", got)
			}
			wantAuth := ""
			if tc.wantCode == 401 {
				wantAuth = "Bearer realm=IAM function invoke"
			}
			if got := rec.Header().Get("WWW-Authenticate"); got != wantAuth {
				t.Errorf("WWW-Authenticate = %q, want %q", got, wantAuth)
			}
		})
	}
}

func TestNewJWTAuthErrors(t *testing.T) {
	iss := newTestIssuer(t)
	badKeys := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/keys" {
			_, _ = io.WriteString(w, `{"keys":[{"kty":"XYZ","kid":"k"}]}`)
			return
		}
		_, _ = io.WriteString(w, `{"issuer":"x","jwks_uri":"http://`+r.Host+`/keys"}`)
	}))
	defer badKeys.Close()
	tests := []struct {
		name, authority, want string
	}{
		{"authority answers 404", iss.url() + "/nothing", "status 404"},
		{"authority down", "http://127.0.0.1:1/.well-known/openid-configuration", "connection refused"},
		{"unknown key type", badKeys.URL + "/config", `reading key "k"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := jwtConfig{enabled: true, authority: tc.authority, name: "fn1", namespace: "ns"}
			_, err := newJWTAuth(context.Background(), cfg, log.New(io.Discard, "", 0), http.NotFoundHandler())
			if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
				t.Errorf("newJWTAuth() = %v, want one line containing %q", err, tc.want)
			}
		})
	}
}

func TestMatchWildcard(t *testing.T) {
	tests := []struct {
		pattern, s string
		want       bool
	}{
		{"openfaas-fn:fn1", "openfaas-fn:fn1", true},
		{"openfaas-fn:fn", "openfaas-fn:fn1", false},
		{"fn:fn1", "openfaas-fn:fn1", false},
		{"*", "openfaas-fn:fn1", true},
		{"openfaas-fn:*", "openfaas-fn:fn1", true},
		{"*:fn1", "openfaas-fn:fn1", true},
		{"*-fn:f*1", "openfaas-fn:fn1", true},
		{"dev:*", "openfaas-fn:fn1", false},
		{"a*a", "a", false},
		{"", "openfaas-fn:fn1", false},
	}
	for _, tc := range tests {
		if got := matchWildcard(tc.pattern, tc.s); got != tc.want {
			t.Errorf("matchWildcard(%q, %q) = %v, want %v", tc.pattern, tc.s, got, tc.want)
		}
	}
}

// TestWatchdogJWTAuth: with jwt_auth the watchdog serves only callers with
// a token, and /_/health and /_/ready stay open to probes; an authority it
// cannot read stops it with one line and status 1.
func TestWatchdogJWTAuth(t *testing.T) {
	t.Parallel()
	iss := newTestIssuer(t)
	env := map[string]string{
		"mode": "serializing", "fprocess": "cat", "jwt_auth": "true", "jwt_auth_authority": iss.authority(),
		"OPENFAAS_NAME": "fn1", "OPENFAAS_NAMESPACE": "openfaas-fn",
	}
	p := startWatchdog(t, env)
	p.waitHealthy()
	if got := p.status("/_/ready"); got != http.StatusOK {
		t.Errorf("GET /_/ready = %d, want 200 without a token", got)
	}
	resp, body := do(t, newRequest(t, http.MethodPost, p.base+"/", strings.NewReader("hi")))
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("POST / without a token = %d %q, want 401", resp.StatusCode, body)
	}
	req := newRequest(t, http.MethodPost, p.base+"/", strings.NewReader("hi"))
	req.Header.Set("Authorization", "Bearer "+iss.sign(t, "ES256", "e1", iss.claims(nil)))
	if resp, body := do(t, req); resp.StatusCode != http.StatusOK || body != "hi" {
		t.Errorf("POST / with a token = %d %q, want 200 %q", resp.StatusCode, body, "hi")
	}

	env["jwt_auth_authority"] = "http://127.0.0.1:1/.well-known/openid-configuration"
	down := startWatchdog(t, env)
	if code := down.wait(10 * time.Second); code != 1 {
		t.Errorf("exit status with the authority down = %d, want 1", code)
	}
	if out := down.out.String(); !strings.Contains(out, "jwt_auth: reading the gateway's OpenID configuration") {
		t.Errorf("output = %q, want the reason", out)
	}
}
