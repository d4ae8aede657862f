package stack

import (
	"fmt"
	"strings"
)

// Warning is a part of a stack file that kiln accepts but doubts, such as
// an unknown key, which faas-cli ignores silently. The library returns
// warnings; the caller shows them.
type Warning struct {
	Path string
	Line int
	Key  string
	Msg  string
}

func (w Warning) String() string {
	return (&Error{Path: w.Path, Line: w.Line, Key: w.Key, Msg: w.Msg}).Error()
}

// The keys each mapping of a stack file knows, as faas-cli's schema has
// them.
var (
	topKeys      = []string{"version", "provider", "functions", "configuration"}
	providerKeys = []string{"name", "gateway"}
	configKeys   = []string{"templates", "copy"}
	templateKeys = []string{"name", "source"}
	resourceKeys = []string{"memory", "cpu"}
	functionKeys = []string{"lang", "handler", "image", "fprocess", "environment", "environment_file", "secrets", "skip_build", "constraints", "labels", "annotations", "limits", "requests", "readonly_root_filesystem", "build_options", "namespace", "build_args", "platforms", "build_secrets"}
)

// unknownKey returns the warning for a key that is not one of known,
// naming the nearest known key when it is close enough to be meant, or
// false for a known key and for keys starting with "x-", where YAML
// anchors are kept by convention (as in compose files).
func unknownKey(path, prefix string, line int, key string, known []string) (Warning, bool) {
	if strings.HasPrefix(key, "x-") {
		return Warning{}, false
	}
	best, bestD := "", -1
	for _, k := range known {
		if k == key {
			return Warning{}, false
		}
		if d := distance(key, k); bestD < 0 || d < bestD {
			best, bestD = k, d
		}
	}
	full := key
	if prefix != "" {
		full = prefix + "." + key
	}
	msg := "unknown key, ignored (as by faas-cli); keys starting with x- are not checked"
	if bestD <= max(2, len(key)/3) {
		msg = fmt.Sprintf("unknown key, ignored; did you mean %s?", best)
	}
	return Warning{Path: path, Line: line, Key: full, Msg: msg}, true
}

// distance is the Levenshtein distance of a and b, in bytes.
func distance(a, b string) int {
	if len(a) > 64 {
		a = a[:64]
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
