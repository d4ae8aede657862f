package bases

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/kiln-build/kiln/layers"
)

// localCADir is where update-ca-certificates finds the certificates an
// administrator adds to Debian's.
const localCADir = "usr/local/share/ca-certificates/"

// LocalCA is a file of PEM CA certificates trusted beside Debian's.
type LocalCA struct {
	// Name is its file name in /usr/local/share/ca-certificates, ending
	// in .crt.
	Name string
	PEM  []byte
}

// ReadLocalCA reads the PEM certificates of the file at path. Its name in
// the image is the file's, with .crt for another extension, as
// update-ca-certificates takes only .crt files. A file without a
// certificate, or with a block that is no X.509 certificate, is an error
// naming it.
func ReadLocalCA(path string) (LocalCA, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return LocalCA{}, fmt.Errorf("CA certificates: %w", err)
	}
	n := 0
	for block, rest := pem.Decode(data); block != nil; block, rest = pem.Decode(rest) {
		if block.Type != "CERTIFICATE" {
			return LocalCA{}, fmt.Errorf("CA certificates %s: a %q PEM block, want only CERTIFICATE", path, block.Type)
		}
		if _, err := x509.ParseCertificate(block.Bytes); err != nil {
			return LocalCA{}, fmt.Errorf("CA certificates %s: certificate %d: %w", path, n+1, err)
		}
		n++
	}
	if n == 0 {
		return LocalCA{}, fmt.Errorf("CA certificates %s: no PEM certificate in the file", path)
	}
	base := filepath.Base(path)
	return LocalCA{Name: strings.TrimSuffix(base, filepath.Ext(base)) + ".crt", PEM: data}, nil
}

// localCAFiles returns the files of cas in /usr/local/share/ca-certificates
// and, for the keys of the steps that read them, " local=" and a digest
// of their names and contents ("" without any).
func localCAFiles(cas []LocalCA) ([]layers.File, string) {
	if len(cas) == 0 {
		return nil, ""
	}
	h := sha256.New()
	files := make([]layers.File, 0, len(cas))
	for _, ca := range cas {
		fmt.Fprintf(h, "%s\x00%d\x00", ca.Name, len(ca.PEM))
		h.Write(ca.PEM)
		files = append(files, layers.Bytes(localCADir+ca.Name, fileMode, ca.PEM))
	}
	return files, " local=" + hex.EncodeToString(h.Sum(nil))
}
