package dockerfile

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseBuildArgs(t *testing.T) {
	env := map[string]string{"FROM_ENV": "env value", "EMPTY": ""}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	tests := []struct {
		name    string
		args    []string
		want    map[string]string
		wantErr bool
	}{
		{name: "values", args: []string{"A=1", "B=x=y", "C="}, want: map[string]string{"A": "1", "B": "x=y", "C": ""}},
		{name: "bare keys from the environment", args: []string{"FROM_ENV", "EMPTY", "UNSET"}, want: map[string]string{"FROM_ENV": "env value", "EMPTY": ""}},
		{name: "no key", args: []string{"=1"}, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseBuildArgs(tc.args, lookup)
			if (err != nil) != tc.wantErr {
				t.Fatalf("ParseBuildArgs() error = %v, want error %v", err, tc.wantErr)
			}
			if diff := cmp.Diff(tc.want, got); !tc.wantErr && diff != "" {
				t.Errorf("ParseBuildArgs() (-want +got):\n%s", diff)
			}
		})
	}
}
