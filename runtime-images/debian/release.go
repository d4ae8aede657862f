package debian

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/clearsign"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	"pault.ag/go/debian/control"
)

// maxRelease bounds the size of a Release file read into memory; Debian's
// are a few hundred kilobytes.
const maxRelease = 16 << 20

// release is the verified content of a suite's Release file.
type release struct {
	url           string
	acquireByHash bool
	// files maps paths relative to dists/<suite>/ to their size and SHA256.
	files map[string]fileSum
}

type fileSum struct {
	size   int64
	sha256 string
}

// release fetches dists/<suite>/InRelease, or Release and Release.gpg when
// the mirror has no InRelease, and verifies its signature.
func (f *Fetcher) release(ctx context.Context, suite string) (*release, error) {
	keyring, err := loadKeyring(f.opts.keyring)
	if err != nil {
		return nil, err
	}
	dists := f.archive(suite) + "/dists/" + suite + "/"
	url := dists + "InRelease"
	signed, err := f.getSmall(ctx, url)
	var he *HTTPError
	if errors.As(err, &he) && he.StatusCode == http.StatusNotFound {
		url = dists + "Release"
		return f.detachedRelease(ctx, suite, url, keyring)
	}
	if err != nil {
		return nil, fmt.Errorf("fetching %s: %w", url, err)
	}
	block, _ := clearsign.Decode(signed)
	if block == nil {
		return nil, &SignatureError{URL: url, Keyring: f.opts.keyring, Err: errors.New("not an OpenPGP clearsigned message")}
	}
	if _, err := block.VerifySignature(keyring, f.pgpConfig()); err != nil {
		return nil, &SignatureError{URL: url, Keyring: f.opts.keyring, Err: err}
	}
	return f.parseRelease(url, suite, block.Plaintext)
}

func (f *Fetcher) detachedRelease(ctx context.Context, suite, url string, keyring openpgp.EntityList) (*release, error) {
	data, err := f.getSmall(ctx, url)
	if err != nil {
		return nil, fmt.Errorf("fetching %s: %w", url, err)
	}
	sig, err := f.getSmall(ctx, url+".gpg")
	if err != nil {
		return nil, fmt.Errorf("fetching %s.gpg: %w", url, err)
	}
	if _, err := openpgp.CheckArmoredDetachedSignature(keyring, bytes.NewReader(data), bytes.NewReader(sig), f.pgpConfig()); err != nil {
		return nil, &SignatureError{URL: url, Keyring: f.opts.keyring, Err: err}
	}
	return f.parseRelease(url, suite, data)
}

func (f *Fetcher) pgpConfig() *packet.Config {
	return &packet.Config{Time: f.opts.now}
}

func (f *Fetcher) getSmall(ctx context.Context, url string) ([]byte, error) {
	var data []byte
	err := f.get(ctx, url, func(r io.Reader) error {
		var err error
		data, err = io.ReadAll(io.LimitReader(r, maxRelease+1))
		if err == nil && len(data) > maxRelease {
			err = fmt.Errorf("larger than %d bytes", maxRelease)
		}
		return err
	})
	return data, err
}

// parseRelease reads the fields kiln relies on from verified Release text.
func (f *Fetcher) parseRelease(url, suite string, text []byte) (*release, error) {
	pr, err := control.NewParagraphReader(bytes.NewReader(text), nil)
	if err != nil {
		return nil, fmt.Errorf("parsing %s: %w", url, err)
	}
	p, err := pr.Next()
	if err != nil {
		return nil, fmt.Errorf("parsing %s: %w", url, err)
	}
	// A validly signed Release of another suite must not stand in for this
	// one: that would let a mirror serve old packages under a new name.
	if codename, name := p.Values["Codename"], p.Values["Suite"]; suite != codename && suite != name {
		return nil, fmt.Errorf("%s is the Release of %s (%s), not of %s", url, codename, name, suite)
	}
	if v, ok := p.Values["Valid-Until"]; ok {
		until, err := time.Parse(time.RFC1123, v)
		if err != nil {
			return nil, fmt.Errorf("parsing %s: Valid-Until %q: %w", url, v, err)
		}
		if now := f.opts.now(); now.After(until) {
			return nil, fmt.Errorf("%s expired on %s: the mirror is stale", url, until.Format(time.RFC3339))
		}
	}
	r := &release{
		url:           url,
		acquireByHash: strings.EqualFold(p.Values["Acquire-By-Hash"], "yes"),
		files:         make(map[string]fileSum),
	}
	for _, line := range strings.Split(p.Values["SHA256"], "\n") {
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		if len(fields) != 3 {
			return nil, fmt.Errorf("parsing %s: bad SHA256 line %q", url, line)
		}
		size, err := strconv.ParseInt(fields[1], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("parsing %s: bad SHA256 line %q", url, line)
		}
		r.files[fields[2]] = fileSum{size: size, sha256: strings.ToLower(fields[0])}
	}
	if len(r.files) == 0 {
		return nil, fmt.Errorf("%s lists no SHA256 sums", url)
	}
	return r, nil
}
