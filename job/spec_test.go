package job

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/name"
	batchv1 "k8s.io/api/batch/v1"
	"sigs.k8s.io/yaml"

	"github.com/kiln-build/kiln/deploy"
	"github.com/kiln-build/kiln/internal/usage"
)

var update = flag.Bool("update", false, "rewrite the golden Jobs in testdata")

const contextDigest = "sha256:4f5d0c1b2a3e4f5d0c1b2a3e4f5d0c1b2a3e4f5d0c1b2a3e4f5d0c1b2a3e4f5d"

func sampleBuild(t *testing.T, lang string) Build {
	t.Helper()
	d, err := name.NewDigest("registry.example.com/team/hello@" + contextDigest)
	if err != nil {
		t.Fatal(err)
	}
	return Build{Function: "hello", Image: "registry.example.com/team/hello:0.1", Context: d, Lang: lang,
		BuildArgs: map[string]string{"GO111MODULE": "on", "ADDITIONAL_PACKAGE": "tzdata"}}
}

func sampleSettings() Settings {
	return Settings{
		Namespace: "builds", ExecutorImage: "registry.example.com/kiln/executor@sha256:" + strings.Repeat("ab", 32),
		TTL: 10 * time.Minute, Deadline: 30 * time.Minute, BackoffLimit: 1,
		CPU: "500m", Memory: "1Gi", MemoryLimit: "2Gi",
	}
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s (-want +got):\n%s", name, diff)
	}
}

func TestNewGolden(t *testing.T) {
	full := sampleSettings()
	full.ServiceAccount, full.ImagePullSecret, full.DockerConfigSecret = "builder", "pull", "push"
	full.DependencySecrets = map[string]string{".npmrc": "npm-token", "settings.xml": "maven", "pip.conf": "pypi"}
	full.CacheRepo, full.Epoch, full.CPULimit = "registry.example.com/team/cache", "1700000000", "2"
	for _, tc := range []struct {
		golden string
		build  Build
		s      Settings
	}{
		{"go.yaml", sampleBuild(t, "golang-middleware"), sampleSettings()},
		{"dockerfile-all-options.yaml", sampleBuild(t, ""), full},
	} {
		t.Run(tc.golden, func(t *testing.T) {
			j, err := New(tc.build, tc.s)
			if err != nil {
				t.Fatalf("New() = %v", err)
			}
			y, err := deploy.MarshalManifest(j)
			if err != nil {
				t.Fatal(err)
			}
			golden(t, tc.golden, y)
			var back batchv1.Job
			if err := yaml.UnmarshalStrict(y, &back); err != nil {
				t.Fatalf("the Job does not read back: %v", err)
			}
		})
	}
}

// TestNewRestricted checks, field by field, what the restricted Pod
// Security Standard asks of the pod, whatever the options.
func TestNewRestricted(t *testing.T) {
	s := sampleSettings()
	s.DockerConfigSecret = "push"
	s.DependencySecrets = map[string]string{".npmrc": "npm"}
	j, err := New(sampleBuild(t, "node20"), s)
	if err != nil {
		t.Fatal(err)
	}
	pod := j.Spec.Template.Spec
	psc, c := pod.SecurityContext, pod.Containers[0]
	sc := c.SecurityContext
	for _, check := range []struct {
		what string
		ok   bool
	}{
		{"runAsNonRoot", *psc.RunAsNonRoot && *sc.RunAsNonRoot},
		{"runAsUser 65532", *psc.RunAsUser == 65532},
		{"seccomp RuntimeDefault", psc.SeccompProfile.Type == "RuntimeDefault"},
		{"capabilities drop ALL", len(sc.Capabilities.Drop) == 1 && sc.Capabilities.Drop[0] == "ALL" && len(sc.Capabilities.Add) == 0},
		{"allowPrivilegeEscalation false", !*sc.AllowPrivilegeEscalation},
		{"readOnlyRootFilesystem", *sc.ReadOnlyRootFilesystem},
		{"no host network", !pod.HostNetwork},
		{"no service account token", !*pod.AutomountServiceAccountToken},
		{"restartPolicy Never", pod.RestartPolicy == "Never"},
		{"FallbackToLogsOnError", c.TerminationMessagePolicy == "FallbackToLogsOnError"},
		{"small backoffLimit", *j.Spec.BackoffLimit <= 2},
		{"ttlSecondsAfterFinished", *j.Spec.TTLSecondsAfterFinished == 600},
	} {
		if !check.ok {
			t.Errorf("New(): %s does not hold", check.what)
		}
	}
	for _, v := range pod.Volumes {
		if v.HostPath != nil {
			t.Errorf("New(): volume %s is a hostPath", v.Name)
		}
	}
}

func TestName(t *testing.T) {
	b := sampleBuild(t, "go")
	for _, tc := range []struct{ fn, want string }{
		{"hello", "kiln-hello-4f5d0c1b2a"},
		{"Hello_World", "kiln-hello-world-4f5d0c1b2a"},
		{strings.Repeat("long-", 20), "kiln-long-long-long-long-long-long-long-long-l-4f5d0c1b2a"},
	} {
		b.Function = tc.fn
		got := Name(b)
		if got != tc.want {
			t.Errorf("Name(%q) = %q, want %q", tc.fn, got, tc.want)
		}
		if len(got)+6 > 63 {
			t.Errorf("Name(%q) = %q: %d characters leave no room for the random suffix", tc.fn, got, len(got))
		}
	}
}

func TestSettingsCheck(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(*Settings)
		want   string
	}{
		{"fine", func(*Settings) {}, ""},
		{"no image", func(s *Settings) { s.ExecutorImage = "" }, "--executor-image"},
		{"bad image", func(s *Settings) { s.ExecutorImage = "UPPER/case" }, "--executor-image"},
		{"bad namespace", func(s *Settings) { s.Namespace = "Builds" }, "--namespace"},
		{"bad memory", func(s *Settings) { s.Memory = "lots" }, "--memory"},
		{"zero cpu", func(s *Settings) { s.CPU = "0" }, "--cpu"},
		{"request over limit", func(s *Settings) { s.Memory, s.MemoryLimit = "4Gi", "1Gi" }, "--memory 4Gi is more than --memory-limit 1Gi"},
		{"negative ttl", func(s *Settings) { s.TTL = -time.Second }, "--ttl"},
		{"short deadline", func(s *Settings) { s.Deadline = 0 }, "--deadline"},
		{"bad secret", func(s *Settings) { s.DockerConfigSecret = "No_Such" }, "--docker-config-secret"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := sampleSettings()
			tc.change(&s)
			err := s.Check()
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("Check() = %v, want nil", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want) || !usage.Is(err)):
				t.Errorf("Check() = %v, want a usage error naming %s", err, tc.want)
			}
		})
	}
}

func TestParseDependencySecrets(t *testing.T) {
	got, err := ParseDependencySecrets([]string{".npmrc=npm-token", "pip.conf=pypi", "settings.xml=maven"})
	want := map[string]string{".npmrc": "npm-token", "pip.conf": "pypi", "settings.xml": "maven"}
	if err != nil || !cmp.Equal(got, want) {
		t.Errorf("ParseDependencySecrets() = %v, %v, want %v", got, err, want)
	}
	for _, bad := range []string{"npmrc=x", ".npmrc", ".npmrc=", ".npmrc=Bad_Name", "id_rsa=keys"} {
		if _, err := ParseDependencySecrets([]string{bad}); err == nil || !strings.Contains(err.Error(), bad) {
			t.Errorf("ParseDependencySecrets(%q) = %v, want an error naming it", bad, err)
		}
	}
}
