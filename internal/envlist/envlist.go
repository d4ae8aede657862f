// Package envlist handles environment lists of KEY=VALUE entries, as image
// configs and processes carry them.
package envlist

import "strings"

// Merge overlays lists: a key's value comes from the last list that sets
// it, and its position from the first. Entries without "=" are dropped.
func Merge(lists ...[]string) []string {
	var out []string
	at := map[string]int{}
	for _, l := range lists {
		for _, kv := range l {
			k, _, ok := strings.Cut(kv, "=")
			if !ok {
				continue
			}
			if i, seen := at[k]; seen {
				out[i] = kv
				continue
			}
			at[k] = len(out)
			out = append(out, kv)
		}
	}
	return out
}

// Has reports whether any list sets key.
func Has(key string, lists ...[]string) bool {
	for _, l := range lists {
		for _, kv := range l {
			if k, _, ok := strings.Cut(kv, "="); ok && k == key {
				return true
			}
		}
	}
	return false
}

// Get returns key's value in env, the last entry setting it winning, as a
// process started with env sees it; "" when none does.
func Get(env []string, key string) string {
	for i := len(env) - 1; i >= 0; i-- {
		if k, v, ok := strings.Cut(env[i], "="); ok && k == key {
			return v
		}
	}
	return ""
}
