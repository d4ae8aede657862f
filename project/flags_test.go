package project

import (
	"context"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/kiln-build/kiln/internal/usage"
)

func TestSourceDateEpoch(t *testing.T) {
	for in, wantErr := range map[string]bool{"": false, "1700000000": false, "-1": true, "soon": true} {
		_, err := SourceDateEpoch(func(string) string { return in })
		if (err != nil) != wantErr {
			t.Errorf("SourceDateEpoch(%q) = %v, want error %v", in, err, wantErr)
		}
	}
}

func TestWithLocalDrain(t *testing.T) {
	tests := []struct {
		name     string
		imageEnv []string
		flags    []string
		want     []string
	}{
		{"default added", []string{"mode=http"}, []string{"a=b"}, []string{"a=b", "healthcheck_interval=1s"}},
		{"image sets it", []string{"healthcheck_interval=5s"}, nil, nil},
		{"flag sets it", nil, []string{"healthcheck_interval=3s"}, []string{"healthcheck_interval=3s"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			img, err := mutate.Config(empty.Image, v1.Config{Env: tc.imageEnv})
			if err != nil {
				t.Fatal(err)
			}
			got, err := withLocalDrain(img, tc.flags)
			if err != nil || !slices.Equal(got, tc.want) {
				t.Errorf("withLocalDrain() = %v, %v, want %v", got, err, tc.want)
			}
		})
	}
}

func TestParseBuildArgs(t *testing.T) {
	got, err := ParseBuildArgs([]string{"ADDITIONAL_PACKAGE=curl", "GOFLAGS=-mod=vendor", "ADDITIONAL_PACKAGE=jq git", "GOFLAGS=-v", "X=a=b"})
	want := map[string]string{"ADDITIONAL_PACKAGE": "curl jq git", "GOFLAGS": "-v", "X": "a=b"}
	if err != nil || !maps.Equal(got, want) {
		t.Errorf("ParseBuildArgs = %v, %v, want %v: ADDITIONAL_PACKAGE space-joined, the last of the others", got, err, want)
	}
}

func TestLocalFlagsCheck(t *testing.T) {
	tests := []struct {
		name    string
		f       LocalFlags
		wantErr bool
	}{
		{"defaults", LocalFlags{Local: true, Port: 8080}, false},
		{"no auth", LocalFlags{Local: true, Port: 8080, NoAuth: true}, false},
		{"no auth and a password", LocalFlags{Local: true, Port: 8080, NoAuth: true, PasswordFile: "pw"}, true},
		{"port out of range", LocalFlags{Local: true, Port: 70000}, true},
		{"not local", LocalFlags{Port: 70000, NoAuth: true, PasswordFile: "pw"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.f.Check(); (err != nil) != tt.wantErr || (err != nil && !usage.Is(err)) {
				t.Errorf("Check() = %v, want a usage error: %v", err, tt.wantErr)
			}
		})
	}
}

func TestParsePublish(t *testing.T) {
	tests := []struct {
		in      string
		want    Binding
		wantErr string
	}{
		{"8080", Binding{"127.0.0.1", 8080, 8080}, ""},
		{"9000", Binding{"127.0.0.1", 9000, 8080}, ""},
		{"9000:8080", Binding{"127.0.0.1", 9000, 8080}, ""},
		{"9001:8081", Binding{"127.0.0.1", 9001, 8081}, ""},
		{"0.0.0.0:9000:8080", Binding{"0.0.0.0", 9000, 8080}, ""},
		{"::1:9000:8080", Binding{}, "want PORT, HOST:CONTAINER or IP:HOST:CONTAINER"},
		{"localhost:9000:8080", Binding{}, `"localhost" is not an IP address`},
		{"0", Binding{}, "--port 0: 0 is not a port: want 1-65535"},
		{"9000:70000", Binding{}, "--port 9000:70000: 70000 is not a port"},
		{"http", Binding{}, `"http" is not a port`},
		{"9000:", Binding{}, `"" is not a port`},
	}
	for _, tc := range tests {
		got, err := ParsePublish(tc.in)
		if tc.wantErr != "" {
			if !usage.Is(err) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("ParsePublish(%q) = %v, want a usage error containing %q", tc.in, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParsePublish(%q) = %+v, %v, want %+v", tc.in, got, err, tc.want)
		}
	}
}

// TestParseImage: what go-containerregistry takes for a Docker Hub name
// but is none is a usage error naming the flag.
func TestParseImage(t *testing.T) {
	for image, wantErr := range map[string]string{
		"ghcr.io/me/fn:0.1":    "",
		"localhost:5000/fn":    "",
		"fn":                   "",
		"-x":                   `path segment "-x"`,
		"/x":                   "empty path segment",
		"x//y":                 "empty path segment",
		"x/":                   "empty path segment",
		"ghcr.io/me/a\x00:b":   "control character",
		"ghcr.io/me/a\n":       "control character",
		"ghcr.io/Me/fn":        `path segment "Me"`,
		"-bad.io/fn":           `"-bad.io" is not a registry host`,
		"ghcr.io/me/fn:ta g":   "could not parse",
		"":                     "empty image reference",
		"ghcr.io/me/fn@sha256": "could not parse",
	} {
		_, err := ParseImage("--image", image, nil)
		if wantErr == "" {
			if err != nil {
				t.Errorf("ParseImage(%q) = %v, want nil", image, err)
			}
			continue
		}
		if !usage.Is(err) || !strings.HasPrefix(err.Error(), "--image: ") || !strings.Contains(err.Error(), wantErr) {
			t.Errorf("ParseImage(%q) = %v, want a usage error naming --image, with %q", image, err, wantErr)
		}
	}
}

func TestCacheRepoFlag(t *testing.T) {
	tests := []struct {
		name, repo, want, wantErr string
		insecure                  []string
	}{
		{name: "repository", repo: "ghcr.io/me/cache", want: "ghcr.io/me/cache"},
		{name: "local registry", repo: "127.0.0.1:5000/cache", want: "127.0.0.1:5000/cache"},
		{name: "insecure", repo: "reg.lan:5000/cache", insecure: []string{"reg.lan:5000"}, want: "reg.lan:5000/cache"},
		{name: "tag", repo: "ghcr.io/me/cache:v1", wantErr: "without a tag or digest"},
		{name: "latest", repo: "ghcr.io/me/cache:latest", wantErr: "without a tag or digest"},
		{name: "digest", repo: "ghcr.io/me/cache@sha256:" + strings.Repeat("a", 64), wantErr: "without a tag or digest"},
		{name: "upper case", repo: "ghcr.io/Me/cache", wantErr: `path segment "Me"`},
		{name: "empty segment", repo: "ghcr.io//cache", wantErr: "empty path segment"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			opts, err := BuildFlags{Parallel: 1, CacheRepo: tc.repo, Registry: RegistryFlags{Timeout: time.Minute, Insecure: tc.insecure}}.Options()
			if tc.wantErr != "" {
				if !usage.Is(err) || !strings.HasPrefix(err.Error(), "--cache-repo") || !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("Options() = %v, want a usage error naming --cache-repo, with %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Options() = %v", err)
			}
			var o options
			for _, opt := range opts {
				if err := opt(&o); err != nil {
					t.Fatal(err)
				}
			}
			if o.cacheRepo == nil || o.cacheRepo.String() != tc.want {
				t.Fatalf("cache repo = %v, want %s", o.cacheRepo, tc.want)
			}
			if got := o.cacheRepo.Scheme(); len(tc.insecure) > 0 && got != "http" {
				t.Errorf("cache repo scheme = %s, want http for an insecure registry", got)
			}
		})
	}
}

func TestRepoAsNamed(t *testing.T) {
	for image, want := range map[string]string{
		"user/fn":                       "user/fn",
		"user/fn:dev":                   "user/fn",
		"fn":                            "fn",
		"localhost:5000/fn:1":           "localhost:5000/fn",
		"localhost:5000/team/fn":        "localhost:5000/team/fn",
		"ghcr.io/me/fn@sha256:" + hex64: "ghcr.io/me/fn",
	} {
		ref, err := name.ParseReference(image)
		if err != nil {
			t.Fatal(err)
		}
		if got := RepoAsNamed(image, ref); got != want {
			t.Errorf("RepoAsNamed(%q) = %q, want %q", image, got, want)
		}
	}
	ref, _ := name.ParseReference("user/fn")
	if got := RepoAsNamed("", ref); got != "index.docker.io/user/fn" {
		t.Errorf("RepoAsNamed(\"\") = %q, want the full name", got)
	}
}

const hex64 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func TestParsePlatform(t *testing.T) {
	for s, wantErr := range map[string]string{
		"linux/amd64":     "",
		"linux/arm/v7":    "",
		"linux/arm64/v8":  "",
		"linux/amd64/v3":  "",
		"linux/amd64/v99": `amd64 has no variant "v99" (known: v1, v2, v3, v4)`,
		"linux/s390x/z15": `s390x has no variant "z15" (known: none)`,
		"linux":           "want OS/ARCH",
		"linux/a/b/c":     "want OS/ARCH",
	} {
		_, err := ParsePlatform("--platform", s)
		if wantErr == "" {
			if err != nil {
				t.Errorf("ParsePlatform(%q) = %v, want nil", s, err)
			}
			continue
		}
		if !usage.Is(err) || !strings.HasPrefix(err.Error(), "--platform ") || !strings.Contains(err.Error(), wantErr) {
			t.Errorf("ParsePlatform(%q) = %v, want a usage error naming --platform, with %q", s, err, wantErr)
		}
	}
}

// TestFProcessFlag: as faas-cli, deploying a stack file's functions ignores
// --fprocess, and kiln says so.
func TestFProcessFlag(t *testing.T) {
	writeStack(t, twoFunctions)
	st, err := LoadStack(context.Background(), Selection{Tag: "latest", Envsubst: true}, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	df := DeployFlags{FProcess: "./other", Update: true}
	ds, err := df.Settings()
	if err != nil {
		t.Fatal(err)
	}
	images := map[string]Image{}
	if err := WithStackImages(context.Background(), st, images); err != nil {
		t.Fatal(err)
	}
	deps, err := Deployments(st, []string{"fig"}, images, ds)
	if err != nil {
		t.Fatal(err)
	}
	if got := deps[0].EnvProcess; got != "figlet" {
		t.Errorf("Deployments() envProcess = %q with --fprocess ./other, want the stack's figlet", got)
	}
	if w := df.Warnings(); len(w) != 1 || !strings.Contains(w[0].Msg, "--fprocess") {
		t.Errorf("DeployFlags.Warnings() = %v, want one about --fprocess", w)
	}
	if w := (DeployFlags{}).Warnings(); w != nil {
		t.Errorf("DeployFlags{}.Warnings() = %v, want none", w)
	}
}
