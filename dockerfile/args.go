package dockerfile

import (
	"fmt"
	"strings"
)

// ParseBuildArgs reads --build-arg values: KEY=value, or a bare KEY that
// takes its value from lookup (the environment) and is left out when
// lookup has none, as docker build does.
func ParseBuildArgs(args []string, lookup func(string) (string, bool)) (map[string]string, error) {
	out := make(map[string]string, len(args))
	for _, a := range args {
		k, v, hasValue := strings.Cut(a, "=")
		if k == "" || strings.ContainsAny(k, " \t") {
			return nil, fmt.Errorf("--build-arg %q: not KEY=value or KEY", a)
		}
		if !hasValue {
			if v, hasValue = lookup(k); !hasValue {
				continue
			}
		}
		out[k] = v
	}
	return out, nil
}
