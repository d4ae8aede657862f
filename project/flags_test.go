package project

import (
	"maps"
	"slices"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
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
