package executor

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kiln-build/kiln/internal/usage"
)

func noEnv(string) string { return "" }

// TestParseKanikoFlags gives every flag of kaniko's table
// (shared/reference/kaniko-executor.md), short forms and deprecated
// aliases included, and wants each accepted.
func TestParseKanikoFlags(t *testing.T) {
	flags := [][]string{
		{"-f", "Dockerfile.prod"}, {"--dockerfile=Dockerfile"}, {"-c", "dir:///workspace"}, {"--context=/workspace"},
		{"--context-sub-path=sub"}, {"--git", "branch=main,single-branch=true,depth=1,recurse-submodules=false,insecure-skip-tls=false"},
		{"-d", "reg.example.com/a:1"}, {"--destination=reg.example.com/a:2"}, {"--no-push"}, {"--no-push-cache"},
		{"--tar-path=/tmp/i.tar"}, {"--tarPath=/tmp/i.tar"}, {"--oci-layout-path=/tmp/layout"}, {"--digest-file=/dev/termination-log"},
		{"--image-name-with-digest-file=/tmp/n"}, {"--image-name-tag-with-digest-file=/tmp/t"}, {"--label=a=b"},
		{"--annotation=org.opencontainers.image.source=x"}, {"--image-format=oci"}, {"--compression=gzip"}, {"--compression-level=3"},
		{"--cache"}, {"--cache=true"}, {"--cache-repo=reg.example.com/cache"}, {"--cache-dir=/cache"}, {"--cache-ttl=24h"},
		{"--cache-run-layers=false"}, {"--cache-copy-layers"}, {"--compressed-caching=false"},
		{"--snapshot-mode=redo"}, {"--snapshotMode=time"}, {"--single-snapshot"}, {"--use-new-run"}, {"--ignore-path=/x"}, {"--ignore-var-run=false"},
		{"--reproducible"}, {"--custom-platform=linux/arm64"}, {"--customPlatform=linux/amd64"},
		{"--build-arg=A=1"}, {"--build-arg", "B"}, {"--target=build"}, {"--skip-unused-stages"},
		{"--insecure"}, {"--skip-tls-verify"}, {"--insecure-pull"}, {"--skip-tls-verify-pull"},
		{"--insecure-registry=reg.example.com"}, {"--skip-tls-verify-registry=reg.example.com"},
		{"--registry-certificate=reg.example.com=/etc/ssl/ca.pem"}, {"--registry-client-cert=reg.example.com=/c.pem,/c.key"}, {"--registry-mirror=mirror.gcr.io"},
		{"--skip-default-registry-fallback"}, {"--registry-map=index.docker.io=mirror.example.com"},
		{"--cleanup"}, {"--push-retry=3"}, {"--image-fs-extract-retry=2"}, {"--image-download-retry=2"},
		{"--skip-push-permission-check"}, {"--kaniko-dir=/kaniko"}, {"--force"}, {"-v", "debug"}, {"--verbosity=info"},
		{"--log-format=json"}, {"--log-timestamp"}, {"--whitelist-var-run=false"}, {"--force-build-metadata"},
		{"--push-ignore-immutable-tag-errors"}, {"--registry-map=index.docker.io=m1.example.com;docker.io=m2.example.com"},
		{"-f", "https://example.com/Dockerfile"},
	}
	for _, args := range flags {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			all := append([]string{"--destination=reg.example.com/fn:1"}, args...)
			if _, err := Parse(all, noEnv); err != nil {
				t.Errorf("Parse(%q) = %v, want nil", all, err)
			}
		})
	}
}

func TestParseValues(t *testing.T) {
	env := map[string]string{"KANIKO_REGISTRY_MIRROR": "m1.example.com,m2.example.com", "KANIKO_NO_PUSH": "true"}
	f, err := Parse([]string{"-c", "tar://stdin", "-d", "r.example.com/a:1", "-d", "r.example.com/b:2", "--tarPath", "x.tar", "--customPlatform", "linux/arm64"}, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	got := []any{f.Context, f.Destinations, f.TarPath, f.CustomPlatform, f.RegistryMirrors, f.NoPush, f.Dockerfile}
	want := []any{"tar://stdin", []string{"r.example.com/a:1", "r.example.com/b:2"}, "x.tar", "linux/arm64", []string{"m1.example.com", "m2.example.com"}, true, "Dockerfile"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Parse() (-want +got):\n%s", diff)
	}
}

func TestParseRefuses(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--destination=r/a", "--no-such-flag"}, "unknown flag: --no-such-flag"},
		{[]string{"--destination=r/a", "-x"}, "unknown shorthand flag: 'x' in -x"},
		{[]string{"--context=/w"}, "--destination or --no-push is required"},
		{[]string{"--no-push", "--tar-path=x.tar"}, "--tar-path and --image-name-*-digest-file need --destination"},
		{[]string{"--destination=r/a", "--snapshot-mode=fast"}, `--snapshot-mode "fast"`},
		{[]string{"--destination=r/a", "--bucket=b"}, "--bucket"},
		{[]string{"--destination=r/a", "-b", "b"}, "--bucket"},
		{[]string{"--destination=r/a", "--no-push", "--cache"}, "--cache with --no-push"},
		{[]string{"--destination=r/a", "--cache", "--cache-repo=oci:/cache"}, "--cache-repo oci:/cache"},
		{[]string{"--destination=r/a", "--image-format=docker"}, "--image-format"},
		{[]string{"--destination=r/a", "--compression=zstd"}, "--compression"},
		{[]string{"--destination=r/a", "--git=color=red"}, "--git color"},
		{[]string{"--destination=r/a", "-v", "loud"}, "--verbosity"},
		{[]string{"--destination=r/a", "extra"}, `unexpected argument "extra"`},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			_, err := Parse(tc.args, noEnv)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !usage.Is(err) {
				t.Errorf("Parse(%q) = %v, want a usage error with %q", tc.args, err, tc.want)
			}
		})
	}
}

func TestParseGit(t *testing.T) {
	env := map[string]string{"GIT_PULL_METHOD": "http"}
	tests := []struct {
		rest string
		opts map[string]string
		want gitSource
	}{
		{"github.com/o/r", nil, gitSource{url: "http://github.com/o/r", depth: 1}},
		{"github.com/o/r#refs/heads/dev", nil, gitSource{url: "http://github.com/o/r", ref: "refs/heads/dev", depth: 1}},
		{"github.com/o/r#main#0123abcd", nil, gitSource{url: "http://github.com/o/r", ref: "main", commit: "0123abcd"}},
		{"/srv/repo", map[string]string{"branch": "v1", "depth": "5", "recurse-submodules": "true"}, gitSource{url: "/srv/repo", ref: "v1", depth: 5, submodules: true}},
	}
	for _, tc := range tests {
		t.Run(tc.rest, func(t *testing.T) {
			got, err := parseGit(tc.rest, tc.opts, func(k string) string { return env[k] })
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(gitSource{})); diff != "" {
				t.Errorf("parseGit() (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRedact(t *testing.T) {
	tests := map[string]string{
		"https://user:pw@github.com/o/r": "https://***@github.com/o/r",
		"tok@github.com/o/r":             "***@github.com/o/r",
		"github.com/o/r":                 "github.com/o/r",
	}
	for in, want := range tests {
		if got := redact(in); got != want {
			t.Errorf("redact(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseBuildArgs(t *testing.T) {
	got, err := parseBuildArgs([]string{"A=1", "B=", "C", "D=x=y"}, func(k string) string { return map[string]string{"C": "from-env"}[k] })
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"A": "1", "B": "", "C": "from-env", "D": "x=y"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("parseBuildArgs() (-want +got):\n%s", diff)
	}
}
