package deploy

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"gopkg.in/yaml.v3"
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

// configFile is faas-cli's config.yml.
type configFile struct {
	Auths []struct {
		Gateway string `yaml:"gateway"`
		Auth    string `yaml:"auth"`
		Token   string `yaml:"token"`
	} `yaml:"auths"`
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
