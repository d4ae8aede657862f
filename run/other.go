//go:build !linux

package run

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Unpack needs Linux; elsewhere it returns errors.ErrUnsupported.
func Unpack(ctx context.Context, img v1.Image, cacheDir string) (*Rootfs, error) {
	return nil, fmt.Errorf("unpacking: %w", errors.ErrUnsupported)
}

// Overlayfs whiteouts and opaque directories exist only on Linux.
func isWhiteout(fs.FileInfo) bool { return false }
func isOpaque(string) bool        { return false }

// Image needs Linux namespaces; elsewhere it returns errors.ErrUnsupported.
func Image(ctx context.Context, img v1.Image, opts ...Option) error {
	if _, err := newOptions(opts); err != nil {
		return err
	}
	return fmt.Errorf("running an image: %w", errors.ErrUnsupported)
}

// Step needs Linux namespaces; elsewhere it returns errors.ErrUnsupported.
func Step(ctx context.Context, lower []v1.Layer, spec StepSpec, opts ...Option) (v1.Layer, error) {
	return nil, fmt.Errorf("running a step: %w", errors.ErrUnsupported)
}

// StepTo needs Linux namespaces; elsewhere it returns errors.ErrUnsupported.
func StepTo(ctx context.Context, lower []v1.Layer, spec StepSpec, w io.Writer, opts ...Option) error {
	return fmt.Errorf("running a step: %w", errors.ErrUnsupported)
}

// InitMain exists only on Linux; elsewhere it exits with status 125.
func InitMain() {
	os.Exit(125)
}
