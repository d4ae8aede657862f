package builderapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"gopkg.in/yaml.v3"

	"github.com/kiln-build/kiln/buildcontext"
)

// The names in a request's tar.
const (
	contextDir  = "context"
	configFile  = "com.openfaas.docker.config"
	secretsFile = "com.openfaas.secrets"
)

// unpack extracts the body into work (refusing paths and links that leave
// it) and reads the config, the lang and the secrets.
func unpack(body io.Reader, work string, keys *KeyPair) (*Request, error) {
	if err := buildcontext.ExtractTar(body, work); err != nil {
		return nil, fmt.Errorf("request body: %w", err)
	}
	raw, err := os.ReadFile(filepath.Join(work, configFile))
	if err != nil {
		return nil, fmt.Errorf("request body: no %s", configFile)
	}
	req := &Request{Dir: filepath.Join(work, contextDir)}
	if err := json.Unmarshal(raw, &req.Config); err != nil {
		return nil, fmt.Errorf("%s: %w", configFile, err)
	}
	if req.Config.Image == "" {
		return nil, fmt.Errorf("%s: image: missing", configFile)
	}
	if info, err := os.Stat(req.Dir); err != nil || !info.IsDir() {
		return nil, fmt.Errorf("request body: no %s/ folder", contextDir)
	}
	if req.Lang, err = templateLang(req.Dir); err != nil {
		return nil, err
	}
	sealed, err := os.ReadFile(filepath.Join(work, secretsFile))
	switch {
	case err == nil:
		os.Remove(filepath.Join(work, secretsFile))
		if req.Secrets, err = keys.Unseal(sealed); err != nil {
			return nil, err
		}
	case !errors.Is(err, fs.ErrNotExist):
		return nil, err
	}
	return req, nil
}

// templateLang is the language template.yml names, "" without one.
func templateLang(dir string) (string, error) {
	raw, err := os.ReadFile(filepath.Join(dir, "template.yml"))
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	var t struct {
		Language string `yaml:"language"`
	}
	if err := yaml.Unmarshal(raw, &t); err != nil {
		return "", fmt.Errorf("context/template.yml: %w", err)
	}
	return t.Language, nil
}
