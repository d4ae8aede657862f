package debian

import (
	"bytes"
	"fmt"
	"os"

	"github.com/ProtonMail/go-crypto/openpgp"
)

// loadKeyring reads a keyring, binary (as in /usr/share/keyrings) or
// ASCII-armored.
func loadKeyring(path string) (openpgp.EntityList, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, &KeyringError{Path: path, Err: err}
	}
	keys, err := openpgp.ReadKeyRing(bytes.NewReader(data))
	if err != nil {
		var armorErr error
		if keys, armorErr = openpgp.ReadArmoredKeyRing(bytes.NewReader(data)); armorErr != nil {
			return nil, &KeyringError{Path: path, Err: err}
		}
	}
	if len(keys) == 0 {
		return nil, &KeyringError{Path: path, Err: fmt.Errorf("no keys")}
	}
	return keys, nil
}
