package project

import (
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kiln-build/kiln/internal/usage"
	"github.com/kiln-build/kiln/publish"
	"github.com/kiln-build/kiln/stack"
)

// variants are the platform variants of each architecture, as the OCI
// image index spec and containerd name them.
var variants = map[string][]string{
	"amd64":   {"v1", "v2", "v3", "v4"},
	"arm":     {"v5", "v6", "v7", "v8"},
	"arm64":   {"v8", "v8.0", "v8.1", "v8.2", "v8.3", "v8.4", "v8.5", "v8.6", "v8.7", "v8.8", "v8.9", "v9", "v9.0", "v9.1", "v9.2", "v9.3", "v9.4", "v9.5"},
	"ppc64le": {"power8", "power9", "power10"},
	"riscv64": {"rva20u64", "rva22u64"},
}

// ParsePlatform reads the flag's OS/ARCH[/VARIANT] value; a variant must
// be one its architecture has. Mistakes are usage errors naming the flag.
func ParsePlatform(flag, s string) (*v1.Platform, error) {
	p, err := v1.ParsePlatform(s)
	if err != nil || p.OS == "" || p.Architecture == "" {
		return nil, usage.Errorf("%s %q: want OS/ARCH[/VARIANT], e.g. linux/arm64", flag, s)
	}
	if p.OS != "linux" {
		return nil, usage.Errorf("%s %q: %s is not supported: functions run in Linux containers, so kiln builds and runs linux images only", flag, s, p.OS)
	}
	if p.Variant != "" && !slices.Contains(variants[p.Architecture], p.Variant) {
		known := "none"
		if v := variants[p.Architecture]; v != nil {
			known = strings.Join(v, ", ")
		}
		return nil, usage.Errorf("%s %q: %s has no variant %q (known: %s)", flag, s, p.Architecture, p.Variant, known)
	}
	return p, nil
}

// ParseImage reads the flag's image reference (--image), refusing what
// go-containerregistry lets through: control characters, an empty path
// segment ("/x", "x//y"), a segment starting with '-'. Mistakes are usage
// errors naming the flag.
func ParseImage(flag, image string, insecure []string) (name.Reference, error) {
	if err := stack.CheckImage(image); err != nil {
		return nil, usage.Errorf("%s: %w", flag, err)
	}
	ref, err := publish.ParseReference(image, insecure)
	if err != nil {
		return nil, usage.Errorf("%s: %w", flag, err)
	}
	return ref, nil
}

// ParseRepository reads the flag's repository (--cache-repo): an image
// reference without a tag or digest, checked as ParseImage checks one.
// Mistakes are usage errors naming the flag.
func ParseRepository(flag, repo string, insecure []string) (name.Repository, error) {
	if err := stack.CheckImage(repo); err != nil {
		return name.Repository{}, usage.Errorf("%s: %w", flag, err)
	}
	ref, err := publish.ParseReference(repo, insecure)
	if err != nil {
		return name.Repository{}, usage.Errorf("%s: %w", flag, err)
	}
	if _, isDigest := ref.(name.Digest); isDigest || ref.Identifier() != "latest" || strings.HasSuffix(repo, ":latest") {
		return name.Repository{}, usage.Errorf("%s %q: want a repository without a tag or digest: each entry's tag is its key", flag, repo)
	}
	return ref.Context(), nil
}
