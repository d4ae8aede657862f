package gateway

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"

	"github.com/kiln-build/kiln/internal/atomicfile"
	"github.com/kiln-build/kiln/stack"
)

// Secrets keep the functions' secrets as files, one per name, in a folder
// the gateway mounts them from read-only at /var/openfaas/secrets/<name>.
// The folder outlives the gateway, as faasd's does, so a secret made once
// with faas-cli secret create serves every later kiln up --local.
type secrets struct {
	dir string
}

// path returns the file of secret name, which must be a DNS-1123 label
// (as Kubernetes names secrets), so it cannot leave the folder.
func (s secrets) path(name string) (string, error) {
	if s.dir == "" {
		return "", &ValidationError{"this gateway has no secrets folder"}
	}
	if !stack.DNSLabel.MatchString(name) || len(name) > 253 {
		return "", &ValidationError{fmt.Sprintf("secret %q: want lowercase letters, digits and '-'", name)}
	}
	return filepath.Join(s.dir, name), nil
}

// lookup returns the file of each named secret, or a *ValidationError
// naming the first that does not exist.
func (s secrets) lookup(names []string) (map[string]string, error) {
	out := map[string]string{}
	for _, n := range names {
		p, err := s.path(n)
		if err != nil {
			return nil, err
		}
		if _, err := os.Stat(p); err != nil {
			return nil, &ValidationError{fmt.Sprintf("secret %s not found: create it with faas-cli secret create, or write it to %s", n, p)}
		}
		out[n] = p
	}
	return out, nil
}

// list returns the secrets' names, sorted, as os.ReadDir gives them.
func (s secrets) list() ([]string, error) {
	if s.dir == "" {
		return nil, nil
	}
	entries, err := os.ReadDir(s.dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range entries {
		if e.Type().IsRegular() && stack.DNSLabel.MatchString(e.Name()) {
			names = append(names, e.Name())
		}
	}
	return names, nil
}

// secretRequest is faas-provider's Secret.
type secretRequest struct {
	Name      string `json:"name"`
	Namespace string `json:"namespace,omitempty"`
	Value     string `json:"value,omitempty"`
	// RawValue is base64 in JSON, which encoding/json decodes for []byte.
	RawValue []byte `json:"rawValue,omitempty"`
}

func (g *Gateway) secretsHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet {
		names, err := g.secrets.list()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		out := []secretRequest{}
		for _, n := range names {
			out = append(out, secretRequest{Name: n, Namespace: DefaultNamespace})
		}
		writeJSON(w, http.StatusOK, out)
		return
	}
	var req secretRequest
	if err := decodeBody(r, &req); err != nil {
		http.Error(w, "reading the secret: "+err.Error(), http.StatusBadRequest)
		return
	}
	p, err := g.secrets.path(req.Name)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	_, statErr := os.Stat(p)
	exists := statErr == nil
	switch r.Method {
	case http.MethodDelete:
		if !exists {
			http.Error(w, "secret "+req.Name+" not found", http.StatusNotFound)
			return
		}
		if err := os.Remove(p); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		// As faas-netes: faas-cli secret remove takes 200 or 202 only.
		w.WriteHeader(http.StatusAccepted)
		return
	case http.MethodPut:
		if !exists {
			http.Error(w, "secret "+req.Name+" not found", http.StatusNotFound)
			return
		}
	case http.MethodPost:
		if exists {
			http.Error(w, "secret "+req.Name+" already exists; update it with PUT", http.StatusConflict)
			return
		}
	}
	value := req.RawValue
	if value == nil {
		value = []byte(req.Value)
	}
	if err := os.MkdirAll(g.secrets.dir, 0o700); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	// Readable by the function's user, whoever kiln runs as: the 0700
	// folder keeps other users of the machine out.
	err = atomicfile.WriteFrom(p, func(w io.Writer) error {
		if f, ok := w.(*os.File); ok {
			if err := f.Chmod(0o644); err != nil {
				return err
			}
		}
		_, err := w.Write(value)
		return err
	})
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	// As faas-netes answers a create and an update.
	w.WriteHeader(http.StatusAccepted)
}
