package bases

import (
	"context"
	"encoding/pem"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestReadLocalCA(t *testing.T) {
	dir := t.TempDir()
	good := pemOf(testDER(t, "Company Root"), testDER(t, "Company Issuing"))
	key := "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"
	notX509 := "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
	for _, tc := range []struct {
		file, content string
		wantName      string
		wantErr       string
	}{
		{file: "company.crt", content: good, wantName: "company.crt"},
		{file: "proxy-ca.pem", content: good, wantName: "proxy-ca.crt"},
		{file: "bundle", content: "# a comment\n" + good, wantName: "bundle.crt"},
		{file: "empty.crt", content: "no PEM here\n", wantErr: "empty.crt: no PEM certificate"},
		{file: "key.pem", content: good + key, wantErr: `key.pem: a "PRIVATE KEY" PEM block`},
		{file: "broken.crt", content: notX509, wantErr: "broken.crt: certificate 1"},
		{file: "missing.crt", wantErr: "missing.crt"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			path := filepath.Join(dir, tc.file)
			if tc.content != "" {
				if err := os.WriteFile(path, []byte(tc.content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			ca, err := ReadLocalCA(path)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("ReadLocalCA() = %v, want an error with %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ReadLocalCA() = %v", err)
			}
			if ca.Name != tc.wantName || string(ca.PEM) != tc.content {
				t.Errorf("ReadLocalCA() = %q with %d bytes, want %q with the file's %d", ca.Name, len(ca.PEM), tc.wantName, len(tc.content))
			}
		})
	}
}

// TestAssembleLocalCAs: a base given local CAs keeps each file in
// /usr/local/share/ca-certificates and trusts its certificates after
// Debian's, in the PEM bundle and in the Java trust store; its
// ca-certificates layer has another key than without them.
func TestAssembleLocalCAs(t *testing.T) {
	m := newStaticMirror(t)
	company, proxy := testDER(t, "Company Root"), testDER(t, "Egress Proxy")
	withCAs := lockedStatic(t, m)
	withCAs.JavaTrustStore = "etc/ssl/certs/java/cacerts"
	withCAs.LocalCAs = []LocalCA{{Name: "proxy.crt", PEM: []byte(pemOf(proxy))}, {Name: "company.crt", PEM: []byte(pemOf(company))}}
	b, err := Assemble(context.Background(), withCAs, "amd64", newFetcher(t, m))
	if err != nil {
		t.Fatalf("Assemble() = %v", err)
	}
	img, _ := image(t, b)
	files := flatten(t, img)
	for _, ca := range withCAs.LocalCAs {
		if got := files["usr/local/share/ca-certificates/"+ca.Name]; got.Content != string(ca.PEM) {
			t.Errorf("/usr/local/share/ca-certificates/%s holds %q, want the file given", ca.Name, got.Content)
		}
	}
	var bundle [][]byte
	rest := []byte(files["etc/ssl/certs/ca-certificates.crt"].Content)
	for block, r := pem.Decode(rest); block != nil; block, r = pem.Decode(r) {
		bundle = append(bundle, block.Bytes)
	}
	if n := len(bundle); n < 3 || !cmp.Equal(bundle[n-2:], [][]byte{company, proxy}) {
		t.Errorf("the bundle's last certificates are not the local CAs in file-name order (%d certificates)", n)
	}
	store, err := readJKS([]byte(files["etc/ssl/certs/java/cacerts"].Content), TrustStorePassword)
	if err != nil {
		t.Fatalf("readJKS(cacerts) = %v", err)
	}
	trusted := map[string][]byte{}
	for _, c := range store {
		trusted[c.alias] = c.der
	}
	if !cmp.Equal(trusted["debian:company.pem"], company) || !cmp.Equal(trusted["debian:proxy.pem"], proxy) {
		t.Errorf("cacerts lacks the local CAs; its aliases: %v", slices.Sorted(maps.Keys(trusted)))
	}
	if len(store) != len(bundle) {
		t.Errorf("cacerts has %d certificates, the bundle %d", len(store), len(bundle))
	}

	plain := lockedStatic(t, m)
	plain.JavaTrustStore = withCAs.JavaTrustStore
	pb, err := Assemble(context.Background(), plain, "amd64", newFetcher(t, m))
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range b.Steps {
		k1, _ := s.Key(context.Background())
		k2, _ := pb.Steps[i].Key(context.Background())
		if strings.Contains(s.Name(), "ca-certificates") == (k1 == k2) {
			t.Errorf("step %s: key with local CAs %s, without %s: only the ca-certificates step's may differ", s.Name(), k1, k2)
		}
	}
}
