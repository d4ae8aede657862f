package executor

import (
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestToolEnv(t *testing.T) {
	home := t.TempDir()
	cache := "/cache"
	tests := []struct {
		name    string
		environ []string
		want    []string
	}{
		{"writable HOME", []string{"HOME=" + home}, []string{"HOME=" + home}},
		{"read-only HOME", []string{"HOME=/nonexistent", "GOCACHE=/mine"}, []string{
			"HOME=/nonexistent", "GOCACHE=/mine",
			"GOMODCACHE=" + filepath.Join(cache, "tools", "go-mod"),
			"npm_config_cache=" + filepath.Join(cache, "tools", "npm"),
			"PIP_CACHE_DIR=" + filepath.Join(cache, "tools", "pip"),
			"MAVEN_OPTS=-Dmaven.repo.local=" + filepath.Join(cache, "tools", "m2"),
		}},
		{"no HOME, MAVEN_OPTS kept", []string{"MAVEN_OPTS=-Xmx1g"}, []string{
			"MAVEN_OPTS=-Xmx1g",
			"GOCACHE=" + filepath.Join(cache, "tools", "go-build"),
			"GOMODCACHE=" + filepath.Join(cache, "tools", "go-mod"),
			"npm_config_cache=" + filepath.Join(cache, "tools", "npm"),
			"PIP_CACHE_DIR=" + filepath.Join(cache, "tools", "pip"),
			"MAVEN_OPTS=-Xmx1g -Dmaven.repo.local=" + filepath.Join(cache, "tools", "m2"),
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, ToolEnv(tc.environ, cache)); diff != "" {
				t.Errorf("ToolEnv() (-want +got):\n%s", diff)
			}
		})
	}
}
