package bases

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/pem"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf16"

	"github.com/google/go-cmp/cmp"

	"github.com/kiln-build/kiln/layers"
)

// readJKS parses a JKS store of trusted certificates the way the JDK does
// and checks its digest; it returns the entries in file order.
func readJKS(data []byte, password string) ([]trustedCert, error) {
	if len(data) < 12+20 {
		return nil, fmt.Errorf("store of %d bytes is too short", len(data))
	}
	content, digest := data[:len(data)-20], data[len(data)-20:]
	if sum := jksDigest(password, content); !bytes.Equal(sum[:], digest) {
		return nil, fmt.Errorf("digest %x, want %x", digest, sum)
	}
	r := bytes.NewReader(content)
	var head struct{ Magic, Version, Count uint32 }
	if err := binary.Read(r, binary.BigEndian, &head); err != nil {
		return nil, err
	}
	if head.Magic != jksMagic || head.Version != jksVersion {
		return nil, fmt.Errorf("magic %x version %d, want %x version %d", head.Magic, head.Version, jksMagic, jksVersion)
	}
	readUTF := func() (string, error) {
		var n uint16
		if err := binary.Read(r, binary.BigEndian, &n); err != nil {
			return "", err
		}
		b := make([]byte, n)
		if _, err := io.ReadFull(r, b); err != nil {
			return "", err
		}
		var units []uint16
		for i := 0; i < len(b); {
			switch {
			case b[i] < 0x80:
				units = append(units, uint16(b[i]))
				i++
			case b[i]&0xe0 == 0xc0 && i+1 < len(b):
				units = append(units, uint16(b[i]&0x1f)<<6|uint16(b[i+1]&0x3f))
				i += 2
			case b[i]&0xf0 == 0xe0 && i+2 < len(b):
				units = append(units, uint16(b[i]&0x0f)<<12|uint16(b[i+1]&0x3f)<<6|uint16(b[i+2]&0x3f))
				i += 3
			default:
				return "", fmt.Errorf("bad modified UTF-8 %x", b)
			}
		}
		return string(utf16.Decode(units)), nil
	}
	var out []trustedCert
	for i := uint32(0); i < head.Count; i++ {
		var tag uint32
		if err := binary.Read(r, binary.BigEndian, &tag); err != nil {
			return nil, err
		}
		if tag != jksTrustedCert {
			return nil, fmt.Errorf("entry %d has tag %d, want %d", i, tag, jksTrustedCert)
		}
		alias, err := readUTF()
		if err != nil {
			return nil, err
		}
		var stamp uint64
		if err := binary.Read(r, binary.BigEndian, &stamp); err != nil {
			return nil, err
		}
		typ, err := readUTF()
		if err != nil {
			return nil, err
		}
		if typ != "X.509" {
			return nil, fmt.Errorf("entry %q has certificate type %q", alias, typ)
		}
		var n uint32
		if err := binary.Read(r, binary.BigEndian, &n); err != nil {
			return nil, err
		}
		der := make([]byte, n)
		if _, err := io.ReadFull(r, der); err != nil {
			return nil, err
		}
		out = append(out, trustedCert{alias: alias, der: der})
	}
	if r.Len() != 0 {
		return nil, fmt.Errorf("%d bytes after the last entry", r.Len())
	}
	return out, nil
}

// testDER returns a self-signed certificate named cn, in DER.
func testDER(t *testing.T, cn string) []byte {
	t.Helper()
	block, _ := pem.Decode(testCert(t, cn))
	return block.Bytes
}

func pemOf(ders ...[]byte) string {
	var b bytes.Buffer
	for _, d := range ders {
		_ = pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: d})
	}
	return b.String()
}

func TestWriteJKS(t *testing.T) {
	a, b := testDER(t, "A"), testDER(t, "B")
	tests := []struct {
		name    string
		certs   []trustedCert
		want    []trustedCert
		wantErr string
	}{
		{name: "sorted by alias", certs: []trustedCert{{"b", b}, {"a", a}}, want: []trustedCert{{"a", a}, {"b", b}}},
		{name: "non-ASCII alias", certs: []trustedCert{{"zertifikat-ä€😀", a}}, want: []trustedCert{{"zertifikat-ä€😀", a}}},
		{name: "empty", certs: nil, want: nil},
		{name: "alias twice", certs: []trustedCert{{"a", a}, {"a", b}}, wantErr: "used twice"},
		{name: "upper-case alias", certs: []trustedCert{{"A", a}}, wantErr: "lower-case"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			data, err := writeJKS(tc.certs, TrustStorePassword)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("writeJKS() = %v, want an error with %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("writeJKS() = %v", err)
			}
			got, err := readJKS(data, TrustStorePassword)
			if err != nil {
				t.Fatalf("readJKS() = %v", err)
			}
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(trustedCert{})); diff != "" {
				t.Errorf("entries (-want +got):\n%s", diff)
			}
			if _, err := readJKS(data, "wrong"); err == nil {
				t.Errorf("readJKS() with the wrong password = nil, want a digest error")
			}
		})
	}
}

func TestJavaTrustStore(t *testing.T) {
	a, b, c := testDER(t, "A"), testDER(t, "B"), testDER(t, "C")
	files := toLayerFiles([]layerFile{
		{"usr/share/ca-certificates/mozilla/Second_Root.crt", pemOf(b)},
		{"usr/share/ca-certificates/mozilla/First_Root.crt", pemOf(a, c)},
		{"usr/share/ca-certificates/mozilla/README", "not a certificate"},
	})
	data, err := javaTrustStore(files)
	if err != nil {
		t.Fatalf("javaTrustStore() = %v", err)
	}
	got, err := readJKS(data, TrustStorePassword)
	if err != nil {
		t.Fatalf("readJKS() = %v", err)
	}
	want := []trustedCert{{"debian:first_root.pem", a}, {"debian:first_root.pem-2", c}, {"debian:second_root.pem", b}}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(trustedCert{})); diff != "" {
		t.Errorf("entries (-want +got):\n%s", diff)
	}
	reversed := []layers.File{files[2], files[1], files[0]}
	if same, err := javaTrustStore(reversed); err != nil || !bytes.Equal(same, data) {
		t.Errorf("javaTrustStore() of the files in another order differs (%v): the store must depend on the certificates only", err)
	}
	if _, err := javaTrustStore(toLayerFiles([]layerFile{{"usr/share/ca-certificates/x/bad.crt", "no PEM"}})); err == nil || !strings.Contains(err.Error(), "bad.crt") {
		t.Errorf("javaTrustStore() of a file without a certificate = %v, want an error naming it", err)
	}

	// The JDK is the reader that counts.
	keytool, err := exec.LookPath("keytool")
	if err != nil {
		t.Log("no keytool on PATH: the JDK's own reading is not checked")
		return
	}
	path := filepath.Join(t.TempDir(), "cacerts")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(keytool, "-list", "-keystore", path, "-storepass", TrustStorePassword).CombinedOutput()
	if err != nil {
		t.Fatalf("keytool -list: %v\n%s", err, out)
	}
	for _, w := range []string{"Your keystore contains 3 entries", "debian:first_root.pem-2, Jan 1, 1970, trustedCertEntry"} {
		if !strings.Contains(string(out), w) {
			t.Errorf("keytool -list output lacks %q:\n%s", w, out)
		}
	}
}

func TestAssembleJavaTrustStore(t *testing.T) {
	m := newStaticMirror(t)
	r := lockedStatic(t, m)
	r.JavaTrustStore = "etc/ssl/certs/java/cacerts"
	b, err := Assemble(context.Background(), r, "amd64", newFetcher(t, m))
	if err != nil {
		t.Fatalf("Assemble() = %v", err)
	}
	img, _ := image(t, b)
	files := flatten(t, img)
	store, ok := files["etc/ssl/certs/java/cacerts"]
	if !ok {
		t.Fatalf("/etc/ssl/certs/java/cacerts is missing")
	}
	if store.Mode != 0o644 {
		t.Errorf("cacerts mode = %o, want 644", store.Mode)
	}
	got, err := readJKS([]byte(store.Content), TrustStorePassword)
	if err != nil {
		t.Fatalf("readJKS(cacerts) = %v", err)
	}
	var aliases []string
	var bundle []byte
	for _, c := range got {
		aliases = append(aliases, c.alias)
		bundle = append(bundle, pemOf(c.der)...)
	}
	if want := []string{"debian:accv_root.pem", "debian:alpha_root.pem", "debian:zeta_root.pem"}; !cmp.Equal(aliases, want) {
		t.Errorf("cacerts aliases = %v, want %v", aliases, want)
	}
	// The same certificates as the PEM bundle, in the same order.
	var wantBundle []byte
	pemBundle := []byte(files["etc/ssl/certs/ca-certificates.crt"].Content)
	for block, rest := pem.Decode(pemBundle); block != nil; block, rest = pem.Decode(rest) {
		wantBundle = append(wantBundle, pemOf(block.Bytes)...)
	}
	if !bytes.Equal(bundle, wantBundle) {
		t.Errorf("cacerts certificates differ from the CA bundle's")
	}

	// Bases without a trust store keep their ca-certificates layer.
	plain := lockedStatic(t, m)
	pb, err := Assemble(context.Background(), plain, "amd64", newFetcher(t, m))
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range b.Steps {
		if !strings.Contains(s.Name(), "ca-certificates") {
			continue
		}
		k1, _ := s.Key(context.Background())
		k2, _ := pb.Steps[i].Key(context.Background())
		if k1 == k2 {
			t.Errorf("ca-certificates step key is the same with and without a trust store")
		}
	}
}
