package bases

import (
	"bytes"
	"crypto/sha1"
	"encoding/binary"
	"encoding/pem"
	"fmt"
	"path"
	"sort"
	"strconv"
	"strings"
	"unicode/utf16"

	"github.com/kiln-build/kiln/layers"
)

// TrustStorePassword is the password of the Java trust store a base
// generates: the JDK's default for cacerts, which the JVM uses to check the
// store's integrity digest when it loads it.
const TrustStorePassword = "changeit"

// The JKS keystore format, as the JDK's sun.security.provider.JavaKeyStore
// reads it.
const (
	jksMagic   = 0xFEEDFEED
	jksVersion = 2
	// jksTrustedCert tags a trusted certificate entry.
	jksTrustedCert = 2
	// jksWhitener is hashed after the password and before the content.
	jksWhitener = "Mighty Aphrodite"
)

// trustedCert is one entry of a trust store: a DER certificate under an
// alias.
type trustedCert struct {
	alias string
	der   []byte
}

// writeJKS returns a JKS keystore holding certs as trusted certificate
// entries, in alias order, each with the timestamp 0: the same
// certificates give the same bytes. Java 9 and later load JKS wherever
// they expect their default PKCS12, so the store serves as cacerts.
func writeJKS(certs []trustedCert, password string) ([]byte, error) {
	certs = append([]trustedCert(nil), certs...)
	sort.Slice(certs, func(i, j int) bool { return certs[i].alias < certs[j].alias })
	var b bytes.Buffer
	u32 := func(v uint32) { _ = binary.Write(&b, binary.BigEndian, v) }
	u32(jksMagic)
	u32(jksVersion)
	u32(uint32(len(certs)))
	for i, c := range certs {
		// The JDK folds aliases to lower case when it loads a store: two
		// that differ only in case would be one entry.
		if c.alias != strings.ToLower(c.alias) || c.alias == "" {
			return nil, fmt.Errorf("trust store alias %q is not a non-empty lower-case name", c.alias)
		}
		if i > 0 && certs[i-1].alias == c.alias {
			return nil, fmt.Errorf("trust store alias %q is used twice", c.alias)
		}
		u32(jksTrustedCert)
		if err := writeModifiedUTF8(&b, c.alias); err != nil {
			return nil, err
		}
		_ = binary.Write(&b, binary.BigEndian, uint64(0))
		if err := writeModifiedUTF8(&b, "X.509"); err != nil {
			return nil, err
		}
		u32(uint32(len(c.der)))
		b.Write(c.der)
	}
	sum := jksDigest(password, b.Bytes())
	b.Write(sum[:])
	return b.Bytes(), nil
}

// jksDigest is the integrity check that ends a JKS store: SHA-1 over the
// password as UTF-16BE, the whitener and the store's content.
func jksDigest(password string, content []byte) [sha1.Size]byte {
	h := sha1.New()
	for _, u := range utf16.Encode([]rune(password)) {
		h.Write([]byte{byte(u >> 8), byte(u)})
	}
	h.Write([]byte(jksWhitener))
	h.Write(content)
	var sum [sha1.Size]byte
	copy(sum[:], h.Sum(nil))
	return sum
}

// writeModifiedUTF8 writes s as Java's DataOutput.writeUTF does: a
// big-endian 16-bit byte count, then each UTF-16 unit in one to three
// bytes, NUL in two.
func writeModifiedUTF8(b *bytes.Buffer, s string) error {
	var enc []byte
	for _, u := range utf16.Encode([]rune(s)) {
		switch {
		case u >= 0x01 && u <= 0x7f:
			enc = append(enc, byte(u))
		case u <= 0x7ff:
			enc = append(enc, 0xc0|byte(u>>6), 0x80|byte(u&0x3f))
		default:
			enc = append(enc, 0xe0|byte(u>>12), 0x80|byte(u>>6&0x3f), 0x80|byte(u&0x3f))
		}
	}
	if len(enc) > 0xffff {
		return fmt.Errorf("trust store alias %.40q... is longer than 65535 bytes", s)
	}
	_ = binary.Write(b, binary.BigEndian, uint16(len(enc)))
	b.Write(enc)
	return nil
}

// javaTrustStore returns a JKS trust store of the certificates caBundle
// puts in the PEM bundle. Each is named after its file, as Debian's
// ca-certificates-java names them: "debian:" and the lower-cased base name
// with .pem for .crt, with "-2", "-3"... for further certificates of one
// file.
func javaTrustStore(files []layers.File) ([]byte, error) {
	certFiles, err := caFiles(files)
	if err != nil {
		return nil, err
	}
	var certs []trustedCert
	for _, f := range certFiles {
		name := "debian:" + strings.ToLower(strings.TrimSuffix(path.Base(f.Path), ".crt")+".pem")
		rest := f.Data
		n := 0
		for {
			var block *pem.Block
			block, rest = pem.Decode(rest)
			if block == nil {
				break
			}
			if block.Type != "CERTIFICATE" {
				continue
			}
			n++
			alias := name
			if n > 1 {
				alias += "-" + strconv.Itoa(n)
			}
			certs = append(certs, trustedCert{alias: alias, der: block.Bytes})
		}
		if n == 0 {
			return nil, fmt.Errorf("/%s holds no PEM certificate", f.Path)
		}
	}
	return writeJKS(certs, TrustStorePassword)
}
