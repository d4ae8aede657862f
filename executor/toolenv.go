package executor

import (
	"os"
	"path/filepath"
	"strings"
)

// toolCaches are the tools' cache settings, and the folder under
// kiln's cache each gets when HOME cannot hold it.
var toolCaches = []struct{ key, dir string }{
	{"GOCACHE", "go-build"},
	{"GOMODCACHE", "go-mod"},
	{"npm_config_cache", "npm"},
	{"PIP_CACHE_DIR", "pip"},
}

// ToolEnv is the environment of the build tools (go, npm, pip, mvn). In a
// pod with a read-only root, HOME (where they keep their caches by
// default) cannot be written: each cache the environment does not set
// then goes under kiln's cache, <cacheDir>/tools/, which is writable
// (and kept when it is a volume). HOME itself stays, so that
// configuration mounted there (~/.npmrc, ~/.m2/settings.xml) is read.
func ToolEnv(environ []string, cacheDir string) []string {
	env := append([]string(nil), environ...)
	if writable(lookup(env, "HOME")) {
		return env
	}
	for _, c := range toolCaches {
		if lookup(env, c.key) == "" {
			env = append(env, c.key+"="+filepath.Join(cacheDir, "tools", c.dir))
		}
	}
	if opts := lookup(env, "MAVEN_OPTS"); !strings.Contains(opts, "maven.repo.local") {
		env = append(env, "MAVEN_OPTS="+strings.TrimSpace(opts+" -Dmaven.repo.local="+filepath.Join(cacheDir, "tools", "m2")))
	}
	return env
}

// lookup is the last value of key in env, as exec uses it.
func lookup(env []string, key string) string {
	v := ""
	for _, kv := range env {
		if k, val, ok := strings.Cut(kv, "="); ok && k == key {
			v = val
		}
	}
	return v
}

// writable says whether a file can be made in dir.
func writable(dir string) bool {
	if dir == "" {
		return false
	}
	f, err := os.CreateTemp(dir, ".kiln-probe-")
	if err != nil {
		return false
	}
	f.Close()
	os.Remove(f.Name())
	return true
}
