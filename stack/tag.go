package stack

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
)

// TagFormat is a --tag value.
type TagFormat string

// The --tag values faas-cli knows.
const (
	TagLatest   TagFormat = "latest"
	TagSHA      TagFormat = "sha"
	TagBranch   TagFormat = "branch"
	TagDescribe TagFormat = "describe"
	TagDigest   TagFormat = "digest"
)

// ParseTagFormat checks a --tag value; "" and "default" mean latest.
func ParseTagFormat(s string) (TagFormat, error) {
	switch s {
	case "", "default", "latest":
		return TagLatest, nil
	case "sha", "branch", "describe", "digest":
		return TagFormat(s), nil
	}
	return "", fmt.Errorf("--tag %q: want latest, sha, branch, describe or digest", s)
}

// WithLatest appends :latest when the last path segment of image has no
// tag, so a registry port is not taken for a tag.
func WithLatest(image string) string {
	last := image[strings.LastIndex(image, "/")+1:]
	if strings.Contains(last, ":") || strings.Contains(last, "@") {
		return image
	}
	return image + ":latest"
}

// ImageName forms the image name faas-cli would: image with :latest when
// untagged, then the --tag rule. git runs in dir (faas-cli uses the working
// directory); handler is the handler folder, hashed for the digest format.
func ImageName(ctx context.Context, format TagFormat, image, handler, dir string) (string, error) {
	b := WithLatest(image)
	switch format {
	case TagLatest, "":
		return b, nil
	case TagSHA:
		sha, err := git(ctx, dir, "rev-parse", "--short", "HEAD")
		if err != nil {
			return "", err
		}
		return b + "-" + sha, nil
	case TagBranch:
		sha, err := git(ctx, dir, "rev-parse", "--short", "HEAD")
		if err != nil {
			return "", err
		}
		branch, err := git(ctx, dir, "rev-parse", "--symbolic-full-name", "--abbrev-ref", "HEAD")
		if err != nil {
			return "", err
		}
		return b + "-" + branch + "-" + sha, nil
	case TagDescribe:
		desc, err := git(ctx, dir, "describe", "--tags", "--always")
		if err != nil {
			return "", err
		}
		return b + "-" + desc, nil
	case TagDigest:
		h, err := HandlerHash(handler)
		if err != nil {
			return "", err
		}
		return b[:strings.LastIndex(b, ":")+1] + h, nil
	}
	return "", fmt.Errorf("unknown tag format %q", format)
}

func git(ctx context.Context, dir string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		// %v, not %w: a wrapped *exec.ExitError would pass for the exit
		// status of a child kiln runs, and main would exit silently with it.
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = err.Error()
		}
		return "", fmt.Errorf("git %s (for --tag): %v", strings.Join(args, " "), msg)
	}
	return strings.TrimSpace(string(out)), nil
}

// HandlerHash is --tag digest's hash: the MD5 hex of the concatenated MD5
// hex strings of the handler's regular files, in sorted path order.
func HandlerHash(dir string) (string, error) {
	// WalkDir's order is per folder, which puts "a/z" before "a-b"; faas-cli
	// sorts the whole paths.
	var paths []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			paths = append(paths, path)
		}
		return err
	})
	if err != nil {
		return "", fmt.Errorf("hashing handler %s: %w", dir, err)
	}
	slices.Sort(paths)
	var all strings.Builder
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return "", fmt.Errorf("hashing handler %s: %w", dir, err)
		}
		sum := md5.Sum(b)
		all.WriteString(hex.EncodeToString(sum[:]))
	}
	sum := md5.Sum([]byte(all.String()))
	return hex.EncodeToString(sum[:]), nil
}

// FunctionImage is the image name of function n under format: the one
// build, push and deploy all compute, skip_build functions included.
func (f *File) FunctionImage(ctx context.Context, n string, format TagFormat) (string, error) {
	fn := f.Functions[n]
	handler := ""
	if format == TagDigest {
		var err error
		if handler, err = f.HandlerDir(fn); err != nil {
			return "", err
		}
	}
	image, err := ImageName(ctx, format, fn.Image, handler, ".")
	if err != nil {
		return "", fmt.Errorf("%s: %w", n, err)
	}
	return image, nil
}
