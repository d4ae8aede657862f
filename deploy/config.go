package deploy

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/kiln-build/kiln/internal/atomicfile"
	"github.com/kiln-build/kiln/internal/flock"
)

// ConfigDir is where faas-cli keeps config.yml: $OPENFAAS_CONFIG, else
// ./.openfaas when $CI is true or 1, else ~/.openfaas.
func ConfigDir(getenv func(string) string) (string, error) {
	if d := getenv("OPENFAAS_CONFIG"); d != "" {
		return d, nil
	}
	if ci := getenv("CI"); ci == "true" || ci == "1" {
		return ".openfaas", nil
	}
	home := getenv("HOME")
	if home == "" {
		var err error
		if home, err = os.UserHomeDir(); err != nil {
			return "", fmt.Errorf("finding the faas-cli config folder: %w", err)
		}
	}
	return filepath.Join(home, ".openfaas"), nil
}

// Auth is how to authenticate to one gateway.
type Auth struct {
	// Basic is base64("user:password"), sent as HTTP Basic auth.
	Basic string
	// Bearer is a token sent as "Authorization: Bearer".
	Bearer string
}

// configFile is faas-cli's config.yml, as its config package writes it.
type configFile struct {
	Auths []authConfig `yaml:"auths"`
}

// authConfig is one gateway's entry.
type authConfig struct {
	Gateway string `yaml:"gateway,omitempty"`
	Auth    string `yaml:"auth,omitempty"`
	Token   string `yaml:"token,omitempty"`
	Options []struct {
		Name  string `yaml:"name"`
		Value string `yaml:"value"`
	} `yaml:"options,omitempty"`
}

// LookupAuth reads dir/config.yml and returns the credentials stored for
// gateway (matched exactly after normalisation, as faas-cli does). token is
// the --token flag: used unless a basic entry exists, which wins as in
// faas-cli. No file or no entry gives the token alone.
func LookupAuth(dir, gateway, token string) (Auth, error) {
	path := filepath.Join(dir, "config.yml")
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return Auth{Bearer: token}, nil
	}
	if err != nil {
		return Auth{}, fmt.Errorf("reading %s: %w", path, err)
	}
	var cf configFile
	if err := yaml.Unmarshal(b, &cf); err != nil {
		return Auth{}, fmt.Errorf("reading %s: %w", path, err)
	}
	gateway = NormalizeURL(gateway)
	for _, a := range cf.Auths {
		if a.Gateway != gateway {
			continue
		}
		if a.Auth == "basic" {
			if _, err := base64.StdEncoding.DecodeString(a.Token); err != nil {
				return Auth{}, fmt.Errorf("%s: the basic token for %s is not base64: %w", path, gateway, err)
			}
			return Auth{Basic: a.Token}, nil
		}
		if token == "" {
			token = a.Token
		}
		break
	}
	return Auth{Bearer: token}, nil
}

// BasicToken encodes user and password as faas-cli login stores them.
func BasicToken(user, password string) string {
	return base64.StdEncoding.EncodeToString([]byte(user + ":" + strings.TrimSpace(password)))
}

// SaveBasicAuth stores user and password for gateway in dir/config.yml as
// faas-cli login does: the folder made 0700, the file 0600, an entry
// {gateway: <normalised URL>, auth: basic, token: BasicToken(user,
// password)} in place of the gateway's previous one, the others kept. The
// file is left alone when it holds that entry already, and replaced
// whole, under a lock on dir, when not.
func SaveBasicAuth(dir, gateway, user, password string) error {
	path := filepath.Join(dir, "config.yml")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("saving the login for %s: %w", gateway, err)
	}
	lock, err := flock.Exclusive(dir)
	if err != nil {
		return fmt.Errorf("saving the login for %s: %w", gateway, err)
	}
	defer lock.Close()
	var cf configFile
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return fmt.Errorf("reading %s: %w", path, err)
	default:
		if err := yaml.Unmarshal(b, &cf); err != nil {
			return fmt.Errorf("reading %s: %w", path, err)
		}
	}
	entry := authConfig{Gateway: NormalizeURL(gateway), Auth: "basic", Token: BasicToken(user, password)}
	i := slices.IndexFunc(cf.Auths, func(a authConfig) bool { return a.Gateway == entry.Gateway })
	switch {
	case i < 0:
		cf.Auths = append(cf.Auths, entry)
	case cf.Auths[i].Auth == entry.Auth && cf.Auths[i].Token == entry.Token && len(cf.Auths[i].Options) == 0:
		return nil
	default:
		cf.Auths[i] = entry
	}
	// atomicfile's temporary file is 0600, as faas-cli makes config.yml.
	err = atomicfile.WriteFrom(path, func(w io.Writer) error {
		enc := yaml.NewEncoder(w)
		enc.SetIndent(2)
		if err := enc.Encode(cf); err != nil {
			return err
		}
		return enc.Close()
	})
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}
