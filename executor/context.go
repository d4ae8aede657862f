package executor

import (
	"bufio"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/kiln-build/kiln/buildcontext"
	"github.com/kiln-build/kiln/internal/usage"
	"github.com/kiln-build/kiln/publish"
)

// Env is what the executor takes from its process, read at the edge.
type Env struct {
	Getenv func(string) string
	// Stdin is read by tar://stdin.
	Stdin io.Reader
	// Environ is the environment of the git binary (with the
	// credentials added).
	Environ []string
	// HTTPClient fetches http(s) contexts; default http.DefaultClient.
	HTTPClient *http.Client
}

// workspace is a resolved build context: Dir, and what removes it.
type workspace struct {
	Dir     string
	cleanup func()
}

func (w *workspace) Close() {
	if w.cleanup != nil {
		w.cleanup()
	}
}

// resolveContext makes the --context a local folder, then goes into
// --context-sub-path.
func resolveContext(ctx context.Context, f *Flags, env Env, insecure []string, transport http.RoundTripper) (*workspace, error) {
	spec := f.Context
	scheme, rest, hasScheme := strings.Cut(spec, "://")
	if !hasScheme {
		scheme, rest = "dir", spec
	}
	var ws *workspace
	var err error
	switch scheme {
	case "dir":
		ws = &workspace{Dir: rest}
	case "tar":
		ws, err = fromTar(rest, env)
	case "http", "https":
		ws, err = fromHTTP(ctx, spec, env)
	case "git":
		ws, err = fromGit(ctx, rest, f.Git, env)
	case "oci":
		ws, err = fromOCI(ctx, rest, insecure, transport)
	case "gs", "s3":
		return nil, usage.Errorf("--context %s: kiln reads no %s bucket; push the context with kiln job (oci://) or serve it over http(s)", spec, scheme)
	default:
		return nil, usage.Errorf("--context %q: want DIR, dir://, tar://, http(s)://, git:// or oci://", spec)
	}
	if err != nil {
		return nil, err
	}
	if f.ContextSubPath != "" {
		sub := filepath.Clean(f.ContextSubPath)
		if filepath.IsAbs(sub) || sub == ".." || strings.HasPrefix(sub, "../") {
			ws.Close()
			return nil, usage.Errorf("--context-sub-path %q: want a path inside the context", f.ContextSubPath)
		}
		ws.Dir = filepath.Join(ws.Dir, sub)
	}
	info, err := os.Stat(ws.Dir)
	if err != nil || !info.IsDir() {
		ws.Close()
		return nil, fmt.Errorf("--context %s: %s is not a folder", spec, ws.Dir)
	}
	abs, err := filepath.Abs(ws.Dir)
	ws.Dir = abs
	return ws, err
}

// scratch returns a new temporary workspace.
func scratch() (*workspace, error) {
	dir, err := os.MkdirTemp("", "kiln-executor-context-")
	if err != nil {
		return nil, fmt.Errorf("making the context folder: %w", err)
	}
	return &workspace{Dir: dir, cleanup: func() { os.RemoveAll(dir) }}, nil
}

// untar extracts a tar stream, gzipped or not, into a new workspace.
func untar(r io.Reader, what string) (*workspace, error) {
	ws, err := scratch()
	if err != nil {
		return nil, err
	}
	br := bufio.NewReader(r)
	var tr io.Reader = br
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			ws.Close()
			return nil, fmt.Errorf("--context %s: %w", what, err)
		}
		tr = zr
	}
	if err := buildcontext.ExtractTar(tr, ws.Dir); err != nil {
		ws.Close()
		return nil, fmt.Errorf("--context %s: %w", what, err)
	}
	return ws, nil
}

func fromTar(path string, env Env) (*workspace, error) {
	if path == "stdin" {
		if env.Stdin == nil {
			return nil, usage.Errorf("--context tar://stdin: no standard input")
		}
		return untar(env.Stdin, "tar://stdin")
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("--context tar://%s: %w", path, err)
	}
	defer f.Close()
	return untar(f, "tar://"+path)
}

func fromHTTP(ctx context.Context, url string, env Env) (*workspace, error) {
	client := env.HTTPClient
	if client == nil {
		client = http.DefaultClient
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, usage.Errorf("--context %s: %w", url, err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("--context %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("--context %s: %s", url, resp.Status)
	}
	return untar(resp.Body, url)
}

func fromOCI(ctx context.Context, ref string, insecure []string, transport http.RoundTripper) (*workspace, error) {
	r, err := publish.ParseReference(ref, insecure)
	if err != nil {
		return nil, usage.Errorf("--context oci://%s: %w", ref, err)
	}
	ws, err := scratch()
	if err != nil {
		return nil, err
	}
	if err := buildcontext.Fetch(ctx, r, ws.Dir, buildcontext.WithTransport(transport)); err != nil {
		ws.Close()
		return nil, fmt.Errorf("--context oci://%s: %w", ref, err)
	}
	return ws, nil
}

// fetchDockerfile downloads -f URL, as kaniko reads one, into a
// workspace of its own: outside the context, which COPY . would send.
func fetchDockerfile(ctx context.Context, url string, env Env) (*workspace, error) {
	client := env.HTTPClient
	if client == nil {
		client = http.DefaultClient
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, usage.Errorf("--dockerfile %s: %w", url, err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("--dockerfile %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("--dockerfile %s: %s", url, resp.Status)
	}
	ws, err := scratch()
	if err != nil {
		return nil, err
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err == nil {
		err = os.WriteFile(filepath.Join(ws.Dir, "Dockerfile"), b, 0o644)
	}
	if err != nil {
		ws.Close()
		return nil, fmt.Errorf("--dockerfile %s: %w", url, err)
	}
	return ws, nil
}
