package envlist

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestMerge(t *testing.T) {
	tests := []struct {
		name  string
		lists [][]string
		want  []string
	}{
		{"empty", nil, nil},
		{"later wins, first position kept", [][]string{{"A=1", "B=2"}, {"C=3", "A=4"}}, []string{"A=4", "B=2", "C=3"}},
		{"values may hold =", [][]string{{"OPTS=-Da=b"}}, []string{"OPTS=-Da=b"}},
		{"entries without = are dropped", [][]string{{"BARE", "A=1"}}, []string{"A=1"}},
		{"empty value overrides", [][]string{{"A=1"}, {"A="}}, []string{"A="}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Merge(tc.lists...); !cmp.Equal(got, tc.want) {
				t.Errorf("Merge() = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestHas(t *testing.T) {
	lists := [][]string{{"A=1"}, {"OPTS=-Dx=y", "BARE"}}
	for key, want := range map[string]bool{"A": true, "OPTS": true, "BARE": false, "-Dx": false, "B": false} {
		if got := Has(key, lists...); got != want {
			t.Errorf("Has(%q) = %v, want %v", key, got, want)
		}
	}
}

func TestGet(t *testing.T) {
	env := []string{"A=1", "OPTS=-Dx=y", "BARE", "A=2", "E="}
	for key, want := range map[string]string{"A": "2", "OPTS": "-Dx=y", "BARE": "", "E": "", "B": ""} {
		if got := Get(env, key); got != want {
			t.Errorf("Get(%q) = %q, want %q", key, got, want)
		}
	}
}
