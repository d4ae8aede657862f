package registrytest

import (
	"fmt"

	"golang.org/x/crypto/bcrypt"
)

// HtpasswdLine returns "USER:BCRYPT-HASH" for an htpasswd file:
// distribution's htpasswd auth accepts only bcrypt entries. The cost is the
// lowest, since the registry checks the hash on every request.
func HtpasswdLine(user, password string) (string, error) {
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		return "", fmt.Errorf("hashing the password: %w", err)
	}
	return user + ":" + string(hash), nil
}
