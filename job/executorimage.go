package job

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/kiln-build/kiln/internal/usage"
)

// ExecutorImageFile is the file, in kiln's config folder, where `kiln
// executor image build --push` records the image it pushed last, one line
// REF@sha256:…: the default executor image of kiln job.
const ExecutorImageFile = "executor-image"

// DefaultExecutorImage returns the executor image recorded in the config
// folder dir.
func DefaultExecutorImage(dir string) (string, error) {
	path := filepath.Join(dir, ExecutorImageFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", usage.Errorf("--executor-image: none given, and none recorded in %s (kiln executor image build --push REPO records one)", path)
	}
	if err != nil {
		return "", fmt.Errorf("reading the default executor image: %w", err)
	}
	ref := strings.TrimSpace(string(b))
	if _, err := name.NewDigest(ref); err != nil {
		return "", fmt.Errorf("%s: want one line REF@sha256:…: %w", path, err)
	}
	return ref, nil
}
