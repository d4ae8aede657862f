package main

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"math/big"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// jwtAuth is of-watchdog's JWT check (faas-middleware's auth package),
// written on the standard library: each request to the function needs
// "Authorization: Bearer <token>", a token the gateway issued for this
// function. The issuer and its keys are read once, at start-up, from the
// gateway's OpenID configuration, as of-watchdog reads them.
//
// A token passes when its signature verifies with the key its kid names,
// its iss is the issuer, its aud holds the issuer (the gateway is both),
// exp and nbf hold with a second of leeway, and its "function" claim grants
// "<namespace>:<name>": permissions must match, audience must match when
// present; "*" in either is a wildcard. Failures answer as faas-middleware
// does: 401 with WWW-Authenticate for a missing or invalid token, 403
// "insufficient permissions" for a valid one that grants nothing here, both
// with X-OpenFaaS-Internal: faas-middleware. Unlike faas-middleware, a
// pattern must match the whole "<namespace>:<name>", not a part of it.
type jwtAuth struct {
	next     http.Handler
	issuer   string
	keys     map[string]crypto.PublicKey // by kid
	function string                      // "<namespace>:<name>"
	debug    bool
	logger   *log.Logger
	now      func() time.Time
}

const jwtRealm = "IAM function invoke"

// jwtLeeway is the clock skew allowed on exp and nbf, as of-watchdog's.
const jwtLeeway = time.Second

// newJWTAuth reads the issuer and its keys from cfg's authority.
func newJWTAuth(ctx context.Context, cfg jwtConfig, logger *log.Logger, next http.Handler) (*jwtAuth, error) {
	var oidc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := getJSON(ctx, cfg.authority, &oidc); err != nil {
		return nil, fmt.Errorf("jwt_auth: reading the gateway's OpenID configuration: %w", err)
	}
	var set struct {
		Keys []jsonWebKey `json:"keys"`
	}
	if err := getJSON(ctx, oidc.JWKSURI, &set); err != nil {
		return nil, fmt.Errorf("jwt_auth: reading the issuer's keys: %w", err)
	}
	a := &jwtAuth{
		next:     next,
		issuer:   oidc.Issuer,
		keys:     make(map[string]crypto.PublicKey, len(set.Keys)),
		function: cfg.namespace + ":" + cfg.name,
		debug:    cfg.debug,
		logger:   logger,
		now:      time.Now,
	}
	for _, k := range set.Keys {
		key, err := k.publicKey()
		if err != nil {
			return nil, fmt.Errorf("jwt_auth: reading key %q from %s: %w", k.Kid, oidc.JWKSURI, err)
		}
		a.keys[k.Kid] = key
	}
	if a.debug {
		logger.Printf("[JWT Auth] Issuer: %s\tJWKS URI: %s\tkeys: %d", a.issuer, oidc.JWKSURI, len(a.keys))
	}
	return a, nil
}

func (a *jwtAuth) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	deny := func(code int, msg string) {
		w.Header().Set("X-OpenFaaS-Internal", "faas-middleware")
		if code == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", "Bearer realm="+jwtRealm)
		}
		http.Error(w, msg, code)
		a.logger.Printf("%s %s - %d ACCESS DENIED - (%s)", r.Method, r.URL.Path, code, time.Since(start).Round(time.Millisecond))
	}
	bearer := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	if bearer == "" {
		deny(http.StatusUnauthorized, "Bearer must be present in Authorization header")
		return
	}
	grant, err := a.verify(bearer)
	if err != nil {
		deny(http.StatusUnauthorized, "failed to parse JWT token: "+err.Error())
		return
	}
	if !matchAny(grant.Audience, a.function, false) || !matchAny(grant.Permissions, a.function, true) {
		deny(http.StatusForbidden, "insufficient permissions")
		return
	}
	r.Header.Set("X-Auth-Seconds", fmt.Sprintf("%f", time.Since(start).Seconds()))
	a.next.ServeHTTP(w, r)
}

// functionGrant is a token's "function" claim.
type functionGrant struct {
	Permissions []string `json:"permissions"`
	Audience    []string `json:"audience"`
}

// jwtClaims are the claims the check reads.
type jwtClaims struct {
	Issuer    string        `json:"iss"`
	Audience  stringOrList  `json:"aud"`
	ExpiresAt *float64      `json:"exp"`
	NotBefore *float64      `json:"nbf"`
	Function  functionGrant `json:"function"`
}

// stringOrList is a claim that is a string or a list of strings, as aud.
type stringOrList []string

func (s *stringOrList) UnmarshalJSON(data []byte) error {
	var one string
	if err := json.Unmarshal(data, &one); err == nil {
		*s = stringOrList{one}
		return nil
	}
	var list []string
	if err := json.Unmarshal(data, &list); err != nil {
		return errors.New("aud: want a string or a list of strings")
	}
	*s = list
	return nil
}

// The errors' texts are golang-jwt's, which of-watchdog's 401 bodies carry.
var (
	errTokenMalformed    = errors.New("token is malformed")
	errTokenUnverifiable = errors.New("token is unverifiable")
	errTokenSignature    = errors.New("token signature is invalid")
	errTokenClaims       = errors.New("token has invalid claims")
)

// verify checks the token's signature and registered claims and returns
// its function claim.
func (a *jwtAuth) verify(token string) (functionGrant, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return functionGrant{}, fmt.Errorf("%w: token contains an invalid number of segments", errTokenMalformed)
	}
	var header struct {
		Alg any `json:"alg"`
		Kid any `json:"kid"`
	}
	if err := decodeSegment(parts[0], "header", &header); err != nil {
		return functionGrant{}, err
	}
	var claims jwtClaims
	if err := decodeSegment(parts[1], "claim", &claims); err != nil {
		return functionGrant{}, err
	}
	alg, ok := header.Alg.(string)
	if !ok {
		return functionGrant{}, fmt.Errorf("%w: signing method (alg) is unspecified", errTokenUnverifiable)
	}
	method, ok := signingMethods[alg]
	if !ok {
		return functionGrant{}, fmt.Errorf("%w: signing method (alg) is unavailable", errTokenUnverifiable)
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return functionGrant{}, fmt.Errorf("%w: could not base64 decode signature: %w", errTokenMalformed, err)
	}
	kid, ok := header.Kid.(string)
	if !ok {
		return functionGrant{}, fmt.Errorf("%w: error while executing keyfunc: invalid kid: %v", errTokenUnverifiable, header.Kid)
	}
	key, ok := a.keys[kid]
	if !ok {
		return functionGrant{}, fmt.Errorf("%w: error while executing keyfunc: invalid kid: %s", errTokenUnverifiable, kid)
	}
	if err := method.verify(parts[0]+"."+parts[1], sig, key); err != nil {
		return functionGrant{}, fmt.Errorf("%w: %w", errTokenSignature, err)
	}

	var problems []string
	now := a.now()
	if claims.ExpiresAt != nil && !now.Before(unixTime(*claims.ExpiresAt).Add(jwtLeeway)) {
		problems = append(problems, "token is expired")
	}
	if claims.NotBefore != nil && now.Before(unixTime(*claims.NotBefore).Add(-jwtLeeway)) {
		problems = append(problems, "token is not valid yet")
	}
	switch {
	case len(claims.Audience) == 0 || len(claims.Audience) == 1 && claims.Audience[0] == "":
		problems = append(problems, "token is missing required claim: aud claim is required")
	case !contains(claims.Audience, a.issuer):
		problems = append(problems, "token has invalid audience")
	}
	switch {
	case claims.Issuer == "":
		problems = append(problems, "token is missing required claim: iss claim is required")
	case claims.Issuer != a.issuer:
		problems = append(problems, "token has invalid issuer")
	}
	if len(problems) > 0 {
		return functionGrant{}, fmt.Errorf("%w: %s", errTokenClaims, strings.Join(problems, ", "))
	}
	return claims.Function, nil
}

func unixTime(secs float64) time.Time {
	return time.Unix(0, int64(secs*float64(time.Second)))
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// decodeSegment reads a token's header or claims, failing in golang-jwt's
// words.
func decodeSegment(seg, what string, v any) error {
	data, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		return fmt.Errorf("%w: could not base64 decode %s: %w", errTokenMalformed, what, err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("%w: could not JSON decode %s: %w", errTokenMalformed, what, err)
	}
	return nil
}

// matchAny reports whether one of patterns matches ref; an empty list
// matches unless required.
func matchAny(patterns []string, ref string, required bool) bool {
	if len(patterns) == 0 {
		return !required
	}
	for _, p := range patterns {
		if matchWildcard(p, ref) {
			return true
		}
	}
	return false
}

// matchWildcard matches s against pattern, where "*" stands for any run of
// characters, over the whole of s.
func matchWildcard(pattern, s string) bool {
	parts := strings.Split(pattern, "*")
	if len(parts) == 1 {
		return pattern == s
	}
	if !strings.HasPrefix(s, parts[0]) {
		return false
	}
	s = s[len(parts[0]):]
	last := parts[len(parts)-1]
	for _, mid := range parts[1 : len(parts)-1] {
		i := strings.Index(s, mid)
		if i < 0 {
			return false
		}
		s = s[i+len(mid):]
	}
	return len(s) >= len(last) && strings.HasSuffix(s, last)
}

// signingMethod verifies one JWS algorithm's signatures.
type signingMethod struct {
	hash    crypto.Hash
	kind    string // "RSA", "RSA-PSS" or "ECDSA"
	keySize int    // ECDSA: bytes of r and of s
}

// signingMethods are the algorithms the gateway's keys can verify; others
// fail as golang-jwt fails them, for want of a key of their type.
var signingMethods = map[string]signingMethod{
	"RS256": {crypto.SHA256, "RSA", 0}, "RS384": {crypto.SHA384, "RSA", 0}, "RS512": {crypto.SHA512, "RSA", 0},
	"PS256": {crypto.SHA256, "RSA-PSS", 0}, "PS384": {crypto.SHA384, "RSA-PSS", 0}, "PS512": {crypto.SHA512, "RSA-PSS", 0},
	"ES256": {crypto.SHA256, "ECDSA", 32}, "ES384": {crypto.SHA384, "ECDSA", 48}, "ES512": {crypto.SHA512, "ECDSA", 66},
	"HS256": {kind: "HMAC"}, "HS384": {kind: "HMAC"}, "HS512": {kind: "HMAC"},
	"EdDSA": {kind: "Ed25519"}, "none": {kind: "none"},
}

func (m signingMethod) verify(signed string, sig []byte, key crypto.PublicKey) error {
	var digest []byte
	switch m.hash {
	case crypto.SHA256:
		d := sha256.Sum256([]byte(signed))
		digest = d[:]
	case crypto.SHA384:
		d := sha512.Sum384([]byte(signed))
		digest = d[:]
	case crypto.SHA512:
		d := sha512.Sum512([]byte(signed))
		digest = d[:]
	}
	switch m.kind {
	case "RSA", "RSA-PSS":
		k, ok := key.(*rsa.PublicKey)
		if !ok {
			return errors.New("key is of invalid type: RSA verify expects *rsa.PublicKey")
		}
		if m.kind == "RSA" {
			return rsa.VerifyPKCS1v15(k, m.hash, digest, sig)
		}
		return rsa.VerifyPSS(k, m.hash, digest, sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthAuto})
	case "ECDSA":
		k, ok := key.(*ecdsa.PublicKey)
		if !ok {
			return errors.New("key is of invalid type: ECDSA verify expects *ecdsa.PublicKey")
		}
		if len(sig) != 2*m.keySize {
			return errors.New("crypto/ecdsa: verification error")
		}
		r := new(big.Int).SetBytes(sig[:m.keySize])
		s := new(big.Int).SetBytes(sig[m.keySize:])
		if !ecdsa.Verify(k, digest, r, s) {
			return errors.New("crypto/ecdsa: verification error")
		}
		return nil
	case "none":
		return fmt.Errorf("%w: 'none' signature type is not allowed", errTokenUnverifiable)
	case "HMAC":
		// A shared secret is never among the issuer's public keys.
		return errors.New("key is of invalid type: HMAC verify expects []byte")
	}
	return errors.New("key is of invalid type: Ed25519 verify expects ed25519.PublicKey")
}

// jsonWebKey is one key of a JWKS (RFC 7517).
type jsonWebKey struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Crv string `json:"crv"`
	N   string `json:"n"`
	E   string `json:"e"`
	X   string `json:"x"`
	Y   string `json:"y"`
}

// unusableKey stands for an oct or OKP key: its kid is known, but no token
// verifies with it, as none does with of-watchdog's golang-jwt.
type unusableKey struct{ kty string }

// publicKey returns the RSA or EC key, an unusableKey for oct and OKP, and
// an error for a key that is malformed or of an unknown type, as
// of-watchdog refuses a key set it cannot read.
func (k jsonWebKey) publicKey() (crypto.PublicKey, error) {
	field := func(name, v string) ([]byte, error) {
		if v == "" {
			return nil, fmt.Errorf("missing field %s", name)
		}
		b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(v, "="))
		if err != nil {
			return nil, fmt.Errorf("field %s: %w", name, err)
		}
		return b, nil
	}
	switch k.Kty {
	case "RSA":
		n, err := field("n", k.N)
		if err != nil {
			return nil, err
		}
		e, err := field("e", k.E)
		if err != nil {
			return nil, err
		}
		exp := new(big.Int).SetBytes(e)
		if exp.Sign() <= 0 || !exp.IsInt64() || exp.Int64() > 1<<31-1 {
			return nil, errors.New("exponent out of range")
		}
		return &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(exp.Int64())}, nil
	case "EC":
		var curve elliptic.Curve
		switch k.Crv {
		case "P-256":
			curve = elliptic.P256()
		case "P-384":
			curve = elliptic.P384()
		case "P-521":
			curve = elliptic.P521()
		default:
			return nil, fmt.Errorf("unknown elliptic curve %q", k.Crv)
		}
		x, err := field("x", k.X)
		if err != nil {
			return nil, err
		}
		y, err := field("y", k.Y)
		if err != nil {
			return nil, err
		}
		size := (curve.Params().BitSize + 7) / 8
		if len(x) != size || len(y) != size {
			return nil, fmt.Errorf("fields x and y must be %d bytes", size)
		}
		key, err := ecdsa.ParseUncompressedPublicKey(curve, append(append([]byte{4}, x...), y...))
		if err != nil {
			return nil, fmt.Errorf("EC key: %w", err)
		}
		return key, nil
	case "oct", "OKP":
		return unusableKey{k.Kty}, nil
	}
	return nil, fmt.Errorf("unknown key type: %s", k.Kty)
}

// getJSON GETs rawURL with the watchdog's small client (TLS for https) and
// decodes a 200 answer into v.
func getJSON(ctx context.Context, rawURL string, v any) error {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q is not an http:// or https:// URL", rawURL)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	c := newUpstreamClient(hostPort(u))
	if u.Scheme == "https" {
		c.tlsConfig = &tls.Config{ServerName: u.Hostname()}
	}
	defer c.closeIdle()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return fmt.Errorf("GET %s: %w", rawURL, err)
	}
	req.Header.Set("User-Agent", "openfaas-watchdog")
	resp, _, err := c.roundTrip(ctx, req, nil)
	if err != nil {
		return fmt.Errorf("GET %s: %w", rawURL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("GET %s: reading the answer: %w", rawURL, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: status %d: %s", rawURL, resp.StatusCode, strings.TrimSpace(string(body)))
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("GET %s: %w", rawURL, err)
	}
	return nil
}
