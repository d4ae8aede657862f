package stack

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestBuildOptionPackages(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "template", "python3-http")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	manifest := "language: python3-http\nbuild_options:\n  - name: dev\n    packages: [make, gcc]\n  - name: libpq\n    packages:\n      - libpq5\n"
	if err := os.WriteFile(filepath.Join(dir, "template.yml"), []byte(manifest), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		lang    string
		options []string
		want    []string
		wantErr string
	}{
		{"python3-http", nil, nil, ""},
		{"python3-http", []string{"libpq"}, []string{"libpq5"}, ""},
		{"python3-http", []string{"dev", "libpq"}, []string{"make", "gcc", "libpq5"}, ""},
		{"python3-http", []string{"gpu"}, nil, `"gpu" is not defined`},
		{"node20", []string{"dev"}, nil, "no " + filepath.Join(root, "template", "node20", "template.yml")},
	}
	for _, tc := range tests {
		got, err := BuildOptionPackages(root, tc.lang, tc.options)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("BuildOptionPackages(%s, %v) = %v, want an error containing %q", tc.lang, tc.options, err, tc.wantErr)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("BuildOptionPackages(%s, %v) = %v, %v, want %v", tc.lang, tc.options, got, err, tc.want)
		}
	}
}

func TestAdditionalPackages(t *testing.T) {
	got := AdditionalPackages([]string{"libpq5", "make"}, []string{"  gcc make  libpq5 "}, nil)
	if want := []string{"gcc", "libpq5", "make"}; !slices.Equal(got, want) {
		t.Errorf("AdditionalPackages() = %v, want %v", got, want)
	}
}
