package executor

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"

	"github.com/kiln-build/kiln/internal/usage"
)

// gitSource is a git:// context: REPO[#REF[#COMMIT]], as kaniko reads it.
type gitSource struct {
	// url is what git fetches: https://REPO (http:// with
	// GIT_PULL_METHOD=http, as kaniko), or a local path.
	url         string
	ref, commit string
	depth       int
	submodules  bool
	skipTLS     bool
}

// parseGit reads the git:// context rest (after the scheme) and the
// --git options.
func parseGit(rest string, opts map[string]string, getenv func(string) string) (gitSource, error) {
	parts := strings.Split(rest, "#")
	if len(parts) > 3 || parts[0] == "" {
		return gitSource{}, usage.Errorf("--context git://%s: want git://REPO[#REF[#COMMIT]]", redact(rest))
	}
	s := gitSource{depth: 1}
	switch {
	case strings.HasPrefix(parts[0], "/"):
		// kiln's addition: a repository on this machine.
		s.url = parts[0]
	case getenv("GIT_PULL_METHOD") == "http":
		s.url = "http://" + parts[0]
	default:
		s.url = "https://" + parts[0]
	}
	if len(parts) > 1 {
		s.ref = parts[1]
	}
	if len(parts) > 2 {
		s.commit = parts[2]
		s.depth = 0 // the commit may be anywhere in the ref's history
	}
	if b := opts["branch"]; b != "" {
		if s.ref != "" && s.ref != b {
			return gitSource{}, usage.Errorf("--git branch=%s and the context's #%s disagree", b, s.ref)
		}
		s.ref = b
	}
	if d, ok := opts["depth"]; ok && d != "" {
		n, err := strconv.Atoi(d)
		if err != nil || n < 0 {
			return gitSource{}, usage.Errorf("--git depth=%s: want a number, 0 for the whole history", d)
		}
		s.depth = n
	}
	var err error
	if s.submodules, err = gitBool(opts, "recurse-submodules"); err != nil {
		return gitSource{}, err
	}
	if s.skipTLS, err = gitBool(opts, "insecure-skip-tls"); err != nil {
		return gitSource{}, err
	}
	// single-branch: kiln fetches one ref always.
	if _, err := gitBool(opts, "single-branch"); err != nil {
		return gitSource{}, err
	}
	return s, nil
}

func gitBool(opts map[string]string, key string) (bool, error) {
	v, ok := opts[key]
	if !ok || v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, usage.Errorf("--git %s=%s: want true or false", key, v)
	}
	return b, nil
}

// redact hides the password or token of a URL.
func redact(s string) string {
	scheme := ""
	rest := s
	if sch, r, ok := strings.Cut(s, "://"); ok {
		scheme, rest = sch+"://", r
	}
	host, path, _ := strings.Cut(rest, "/")
	if at := strings.LastIndex(host, "@"); at >= 0 {
		host = "***@" + host[at+1:]
	}
	if path != "" || strings.Contains(rest, "/") {
		return scheme + host + "/" + path
	}
	return scheme + host
}

// fromGit clones a git:// context with the git binary: one ref (the
// remote's HEAD by default), shallow unless a commit is named.
// Credentials (GIT_TOKEN, else GIT_USERNAME and GIT_PASSWORD, as kaniko
// reads them) go to git in its environment as an HTTP header, never on
// its command line or in a message.
func fromGit(ctx context.Context, rest string, opts map[string]string, e Env) (*workspace, error) {
	getenv := e.Getenv
	s, err := parseGit(rest, opts, getenv)
	if err != nil {
		return nil, err
	}
	if _, err := exec.LookPath("git"); err != nil {
		return nil, fmt.Errorf("--context git://: the git binary is not on PATH")
	}
	ws, err := scratch()
	if err != nil {
		return nil, err
	}
	env := gitEnv(s, e.Environ, getenv)
	run := func(args ...string) error {
		cmd := exec.CommandContext(ctx, "git", args...)
		cmd.Dir = ws.Dir
		cmd.Env = env
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("--context git://%s: git %s: %v: %s", redact(rest), args[0], err, lastLine(redactAll(strings.ReplaceAll(out.String(), s.url, redact(s.url)), getenv)))
		}
		return nil
	}
	ref := s.ref
	if ref == "" {
		ref = "HEAD"
	}
	fetch := []string{"fetch", "--quiet", "--no-tags"}
	if s.depth > 0 {
		fetch = append(fetch, "--depth="+strconv.Itoa(s.depth))
	}
	fetch = append(fetch, "origin", ref)
	steps := [][]string{{"init", "--quiet"}, {"remote", "add", "origin", s.url}, fetch}
	checkout := "FETCH_HEAD"
	if s.commit != "" {
		checkout = s.commit
	}
	steps = append(steps, []string{"checkout", "--quiet", "--detach", checkout})
	if s.submodules {
		steps = append(steps, []string{"submodule", "update", "--quiet", "--init", "--recursive", "--depth=1"})
	}
	for _, args := range steps {
		if err := run(args...); err != nil {
			ws.Close()
			return nil, err
		}
	}
	// The context is the tree; the clone's history is not part of it.
	if err := os.RemoveAll(ws.Dir + "/.git"); err != nil {
		ws.Close()
		return nil, err
	}
	return ws, nil
}

// gitEnv is git's environment: the process's, no prompt, the
// credentials as an Authorization header through GIT_CONFIG_*.
func gitEnv(s gitSource, environ []string, getenv func(string) string) []string {
	env := append(slices.Clone(environ), "GIT_TERMINAL_PROMPT=0", "GIT_ASKPASS=", "GIT_CONFIG_NOSYSTEM=1")
	if s.skipTLS {
		env = append(env, "GIT_SSL_NO_VERIFY=true")
	}
	user, pass := getenv("GIT_USERNAME"), getenv("GIT_PASSWORD")
	if token := getenv("GIT_TOKEN"); token != "" {
		user, pass = token, ""
	}
	if user != "" || pass != "" {
		cred := base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))
		env = append(env, "GIT_CONFIG_COUNT=1", "GIT_CONFIG_KEY_0=http.extraHeader", "GIT_CONFIG_VALUE_0=Authorization: Basic "+cred)
	}
	return env
}

// redactAll removes the credentials from git's output.
func redactAll(out string, getenv func(string) string) string {
	for _, k := range []string{"GIT_TOKEN", "GIT_PASSWORD"} {
		if v := getenv(k); v != "" {
			out = strings.ReplaceAll(out, v, "***")
			out = strings.ReplaceAll(out, url.QueryEscape(v), "***")
		}
	}
	return out
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}
