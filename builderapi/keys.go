package builderapi

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"strings"

	"golang.org/x/crypto/curve25519"
	"golang.org/x/crypto/nacl/box"
	"gopkg.in/yaml.v3"
)

// Algorithm is the only sealing algorithm faas-cli uses.
const Algorithm = "nacl/box"

// KeyPair is the Curve25519 key pair build secrets are sealed to.
type KeyPair struct {
	public, private [32]byte
}

// KeyInfo is GET /publickey's reply.
type KeyInfo struct {
	KeyID     string `json:"key_id"`
	Algorithm string `json:"algorithm"`
	PublicKey string `json:"public_key"`
}

// GenerateKeyPair returns a new key pair.
func GenerateKeyPair() (*KeyPair, error) {
	pub, priv, err := box.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating the secrets key pair: %w", err)
	}
	return &KeyPair{public: *pub, private: *priv}, nil
}

// ParsePrivateKey reads a base64 Curve25519 private key, as faas-cli's
// `secret keygen` writes it, so that every replica of a builder has the
// same key.
func ParsePrivateKey(b []byte) (*KeyPair, error) {
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(raw) != 32 {
		return nil, fmt.Errorf("private key: want 32 bytes in base64")
	}
	k := &KeyPair{}
	copy(k.private[:], raw)
	pub, err := curve25519.X25519(k.private[:], curve25519.Basepoint)
	if err != nil {
		return nil, fmt.Errorf("private key: %w", err)
	}
	copy(k.public[:], pub)
	return k, nil
}

// Info is the public half, as GET /publickey returns it; the key ID is
// the public key's first eight characters.
func (k *KeyPair) Info() KeyInfo {
	pub := base64.StdEncoding.EncodeToString(k.public[:])
	return KeyInfo{KeyID: pub[:8], Algorithm: Algorithm, PublicKey: pub}
}

// envelope is com.openfaas.secrets: each value sealed on its own as
// base64(24-byte nonce || box), from the sender's key pair.
type envelope struct {
	Version   string            `yaml:"version"`
	Algorithm string            `yaml:"algorithm"`
	KeyID     string            `yaml:"key_id,omitempty"`
	PublicKey string            `yaml:"public_key"`
	Secrets   map[string]string `yaml:"secrets"`
}

// Unseal opens a com.openfaas.secrets file.
func (k *KeyPair) Unseal(b []byte) (map[string][]byte, error) {
	var env envelope
	if err := yaml.Unmarshal(b, &env); err != nil {
		return nil, fmt.Errorf("com.openfaas.secrets: %w", err)
	}
	if env.Version != "v1" || env.Algorithm != Algorithm {
		return nil, fmt.Errorf("com.openfaas.secrets: version %q, algorithm %q: want v1, %s", env.Version, env.Algorithm, Algorithm)
	}
	sender, err := base64.StdEncoding.DecodeString(strings.TrimSpace(env.PublicKey))
	if err != nil || len(sender) != 32 {
		return nil, fmt.Errorf("com.openfaas.secrets: public_key: want 32 bytes in base64")
	}
	var senderKey [32]byte
	copy(senderKey[:], sender)
	out := map[string][]byte{}
	for name, v := range env.Secrets {
		sealed, err := base64.StdEncoding.DecodeString(strings.TrimSpace(v))
		if err != nil || len(sealed) < 24 {
			return nil, fmt.Errorf("com.openfaas.secrets: secret %q: not base64(nonce || box)", name)
		}
		var nonce [24]byte
		copy(nonce[:], sealed)
		plain, ok := box.Open(nil, sealed[24:], &nonce, &senderKey, &k.private)
		if !ok {
			return nil, fmt.Errorf("com.openfaas.secrets: secret %q: cannot be opened with this builder's key (key_id %s; faas-cli may hold an older public key)", name, k.Info().KeyID)
		}
		out[name] = plain
	}
	return out, nil
}

// Seal seals values to public, as faas-cli does; tests and clients use it.
func Seal(public string, values map[string][]byte) ([]byte, error) {
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(public))
	if err != nil || len(raw) != 32 {
		return nil, fmt.Errorf("public key: want 32 bytes in base64")
	}
	var recipient [32]byte
	copy(recipient[:], raw)
	pub, priv, err := box.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	env := envelope{Version: "v1", Algorithm: Algorithm, PublicKey: base64.StdEncoding.EncodeToString(pub[:]), Secrets: map[string]string{}}
	for name, v := range values {
		var nonce [24]byte
		if _, err := rand.Read(nonce[:]); err != nil {
			return nil, err
		}
		env.Secrets[name] = base64.StdEncoding.EncodeToString(box.Seal(nonce[:], v, &nonce, &recipient, priv))
	}
	return yaml.Marshal(env)
}
