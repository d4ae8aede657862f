package stack

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
)

// The distribution spec's grammar for a registry host and a path
// component, which go-containerregistry does not check fully: it takes
// "-x", "/x" and "x//y" for Docker Hub names.
var (
	hostRE      = regexp.MustCompile(`^(\[[0-9a-fA-F:]+\]|[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?)*)(:[0-9]+)?$`)
	componentRE = regexp.MustCompile(`^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*$`)
)

// CheckImage checks that image is a valid image reference, as docker and
// faas-cli read it: [HOST[:PORT]/]PATH[:TAG][@DIGEST], where no path
// segment is empty or starts with a '-', and no byte is a control
// character. The error says what is wrong, without the field's name.
func CheckImage(image string) error {
	if image == "" {
		return fmt.Errorf("empty image reference")
	}
	if i := strings.IndexFunc(image, func(r rune) bool { return r < 0x20 || r == 0x7f }); i >= 0 {
		return fmt.Errorf("image reference %q: control character %q at byte %d", image, image[i], i)
	}
	repo := image
	if i := strings.IndexByte(repo, '@'); i >= 0 {
		repo = repo[:i]
	}
	if i := strings.LastIndexByte(repo, ':'); i > strings.LastIndexByte(repo, '/') {
		repo = repo[:i]
	}
	parts := strings.Split(repo, "/")
	if len(parts) > 1 && (strings.ContainsAny(parts[0], ".:[") || parts[0] == "localhost") {
		if !hostRE.MatchString(parts[0]) {
			return fmt.Errorf("image reference %q: %q is not a registry host", image, parts[0])
		}
		parts = parts[1:]
	}
	for _, p := range parts {
		switch {
		case p == "":
			return fmt.Errorf("image reference %q: empty path segment", image)
		case !componentRE.MatchString(p):
			return fmt.Errorf("image reference %q: path segment %q: want lowercase letters and digits, separated by '.', '_', '__' or '-'", image, p)
		}
	}
	if _, err := name.ParseReference(image); err != nil {
		return fmt.Errorf("image reference %q: %w", image, err)
	}
	return nil
}
