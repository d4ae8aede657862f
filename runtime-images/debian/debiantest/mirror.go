package debiantest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/clearsign"
	"github.com/ProtonMail/go-crypto/openpgp/packet"

	"github.com/kiln-build/kiln/runtime-images/debian"
)

// Suite is one suite of a test mirror.
type Suite struct {
	// Name is the directory under dists/. A name ending in "-security" is
	// served from the security archive, with its pool under pool/updates.
	Name string
	// Codename defaults to Name.
	Codename string
	// Packages lists the packages of each architecture.
	Packages map[string][]Deb
	// IndexCompression is "xz" (the default) or "gz": the one compressed
	// Packages variant the suite lists, beside the uncompressed one.
	IndexCompression string
	// ValidUntil, when set, is written to the Release.
	ValidUntil time.Time
	// AcquireByHash serves indexes under by-hash/SHA256/ as well and says
	// so in the Release.
	AcquireByHash bool
	// NoInRelease serves only Release and Release.gpg.
	NoInRelease bool
}

// Mirror is a Debian mirror served by an httptest server.
type Mirror struct {
	server *httptest.Server
	// Keyring is the path of a keyring file holding the mirror's public
	// key.
	Keyring string

	packages map[string]debian.Package // by suite/arch/name

	mu       sync.Mutex
	files    map[string][]byte
	requests map[string]int
	failures map[string]int
}

// NewMirror builds and serves a mirror of suites, signed with a key made
// for the test. The server is closed when the test ends.
func NewMirror(t testing.TB, suites ...Suite) *Mirror {
	t.Helper()
	key := NewKey(t)
	m := &Mirror{
		Keyring:  WriteKeyring(t, key),
		packages: make(map[string]debian.Package),
		files:    make(map[string][]byte),
		requests: make(map[string]int),
		failures: make(map[string]int),
	}
	for _, s := range suites {
		if err := m.addSuite(s, key); err != nil {
			t.Fatalf("building the test mirror: %v", err)
		}
	}
	m.server = httptest.NewServer(http.HandlerFunc(m.serve))
	t.Cleanup(m.server.Close)
	return m
}

// URL returns the base URL of the main archive (".../debian").
func (m *Mirror) URL() string { return m.server.URL + "/debian" }

// SecurityURL returns the base URL of the security archive
// (".../debian-security").
func (m *Mirror) SecurityURL() string { return m.server.URL + "/debian-security" }

// Options returns the fetcher options that point at this mirror and its
// key, with retries 1ms apart.
func (m *Mirror) Options() []debian.Option {
	return []debian.Option{
		debian.WithMirror(m.URL()),
		debian.WithSecurityMirror(m.SecurityURL()),
		debian.WithKeyring(m.Keyring),
		debian.WithBackoff(time.Millisecond),
	}
}

// Package returns the index entry of a package the mirror serves.
func (m *Mirror) Package(t testing.TB, suite, arch, name string) debian.Package {
	t.Helper()
	p, ok := m.packages[suite+"/"+arch+"/"+name]
	if !ok {
		t.Fatalf("the test mirror has no %s in %s for %s", name, suite, arch)
	}
	return p
}

// PackagePath returns the URL path a package is served at.
func (m *Mirror) PackagePath(p debian.Package) string {
	return archivePath(p.Suite) + "/" + p.Filename
}

// Requests returns how many requests the URL path has had.
func (m *Mirror) Requests(urlPath string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.requests[urlPath]
}

// Replace makes the mirror serve data at the URL path from now on.
func (m *Mirror) Replace(urlPath string, data []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.files[urlPath] = data
}

// Fail makes the next n requests for the URL path fail with 503.
func (m *Mirror) Fail(urlPath string, n int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.failures[urlPath] = n
}

func (m *Mirror) serve(w http.ResponseWriter, r *http.Request) {
	m.mu.Lock()
	m.requests[r.URL.Path]++
	fail := m.failures[r.URL.Path] > 0
	if fail {
		m.failures[r.URL.Path]--
	}
	data, ok := m.files[r.URL.Path]
	m.mu.Unlock()
	switch {
	case r.Method != http.MethodGet:
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	case fail:
		http.Error(w, "injected failure", http.StatusServiceUnavailable)
	case !ok:
		http.NotFound(w, r)
	default:
		w.Write(data)
	}
}

func archivePath(suite string) string {
	if strings.HasSuffix(suite, "-security") {
		return "/debian-security"
	}
	return "/debian"
}

func (m *Mirror) addSuite(s Suite, key *openpgp.Entity) error {
	root := archivePath(s.Name)
	pool := "pool/main"
	if strings.HasSuffix(s.Name, "-security") {
		pool = "pool/updates/main"
	}
	codename := s.Codename
	if codename == "" {
		codename = s.Name
	}
	dists := root + "/dists/" + s.Name + "/"
	var sums strings.Builder
	var arches []string
	for arch := range s.Packages {
		arches = append(arches, arch)
	}
	sort.Strings(arches)
	for _, arch := range arches {
		var index bytes.Buffer
		for _, d := range s.Packages[arch] {
			data, err := d.Build()
			if err != nil {
				return fmt.Errorf("building %s: %w", d.Name, err)
			}
			ver := d.Version // pool file names leave the epoch out
			if _, after, ok := strings.Cut(ver, ":"); ok {
				ver = after
			}
			p := debian.Package{
				Name: d.Name, Version: d.Version, Architecture: d.arch(), Suite: s.Name,
				Filename: fmt.Sprintf("%s/%s/%s/%s_%s_%s.deb", pool, d.Name[:1], d.Name, d.Name, ver, d.arch()),
				Size:     int64(len(data)), SHA256: hexSum(data),
				Depends: d.Depends, PreDepends: d.PreDepends, Provides: d.Provides,
			}
			m.packages[s.Name+"/"+arch+"/"+d.Name] = p
			m.files[root+"/"+p.Filename] = data
			index.WriteString(d.Control())
			fmt.Fprintf(&index, "Filename: %s\nSize: %d\nSHA256: %s\n\n", p.Filename, p.Size, p.SHA256)
		}
		dir := "main/binary-" + arch + "/"
		ext, packed, err := compress(s.IndexCompression, index.Bytes())
		if err != nil {
			return err
		}
		for name, data := range map[string][]byte{"Packages": index.Bytes(), "Packages" + ext: packed} {
			m.files[dists+dir+name] = data
			if s.AcquireByHash {
				m.files[dists+dir+"by-hash/SHA256/"+hexSum(data)] = data
			}
		}
		fmt.Fprintf(&sums, " %s %d %sPackages\n", hexSum(index.Bytes()), index.Len(), dir)
		fmt.Fprintf(&sums, " %s %d %sPackages%s\n", hexSum(packed), len(packed), dir, ext)
	}
	var rel strings.Builder
	fmt.Fprintf(&rel, "Origin: Debian\nLabel: Debian\nSuite: %s\nCodename: %s\n", s.Name, codename)
	fmt.Fprintf(&rel, "Date: %s\n", time.Unix(0, 0).UTC().Format(time.RFC1123))
	if !s.ValidUntil.IsZero() {
		fmt.Fprintf(&rel, "Valid-Until: %s\n", s.ValidUntil.UTC().Format(time.RFC1123))
	}
	if s.AcquireByHash {
		rel.WriteString("Acquire-By-Hash: yes\n")
	}
	fmt.Fprintf(&rel, "Architectures: %s\nComponents: main\nDescription: kiln test suite\nSHA256:\n%s", strings.Join(arches, " "), sums.String())
	release := []byte(rel.String())
	m.files[dists+"Release"] = release
	var sig bytes.Buffer
	if err := openpgp.ArmoredDetachSign(&sig, key, bytes.NewReader(release), nil); err != nil {
		return err
	}
	m.files[dists+"Release.gpg"] = sig.Bytes()
	if !s.NoInRelease {
		inRelease, err := Clearsign(key, release)
		if err != nil {
			return err
		}
		m.files[dists+"InRelease"] = inRelease
	}
	return nil
}

// Clearsign returns text clearsigned with key, as InRelease files are.
func Clearsign(key *openpgp.Entity, text []byte) ([]byte, error) {
	var out bytes.Buffer
	w, err := clearsign.Encode(&out, key.PrivateKey, nil)
	if err != nil {
		return nil, err
	}
	if _, err := w.Write(text); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// NewKey returns a fresh Ed25519 signing key.
func NewKey(t testing.TB) *openpgp.Entity {
	t.Helper()
	key, err := openpgp.NewEntity("kiln test archive", "", "archive@kiln.invalid", &packet.Config{Algorithm: packet.PubKeyAlgoEdDSA})
	if err != nil {
		t.Fatalf("making an OpenPGP key: %v", err)
	}
	return key
}

// WriteKeyring writes the public part of key to a keyring file in a
// temporary directory and returns its path.
func WriteKeyring(t testing.TB, key *openpgp.Entity) string {
	t.Helper()
	var buf bytes.Buffer
	if err := key.Serialize(&buf); err != nil {
		t.Fatalf("serialising the key: %v", err)
	}
	path := filepath.Join(t.TempDir(), "keyring.gpg")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func hexSum(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}
