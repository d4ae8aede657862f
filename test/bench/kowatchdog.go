package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/kiln-build/kiln/layers"
	"github.com/kiln-build/kiln/test/registrytest"
)

// koWatchdog names ko's image on a base that holds kiln's watchdog: what a
// function built with ko needs to serve behind the OpenFaaS contract, as
// every kiln image does.
const koWatchdog = "ko+watchdog"

// pushWatchdogBase pushes the ko suite's base with kiln's watchdog added
// at /usr/bin/fwatchdog, the layer kiln puts in its images, and returns its
// reference by digest.
func (b *bench) pushWatchdogBase(ctx context.Context) (string, error) {
	base, err := name.ParseReference(b.baseRef, name.Insecure)
	if err != nil {
		return "", err
	}
	img, err := remote.Image(base, remote.WithContext(ctx))
	if err != nil {
		return "", err
	}
	var tar bytes.Buffer
	wd := filepath.Join(filepath.Dir(b.cfg.kiln), "kiln-watchdog-linux-amd64")
	if err := layers.WriteTar(&tar, []layers.File{layers.HostFile("usr/bin/fwatchdog", 0o755, wd)}); err != nil {
		return "", fmt.Errorf("reading the watchdog: %w", err)
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(tar.Bytes())), nil })
	if err != nil {
		return "", err
	}
	withWatchdog, err := mutate.AppendLayers(img, layer)
	if err != nil {
		return "", err
	}
	dst, err := name.ParseReference(b.reg.Host+"/base/static-watchdog:latest", name.Insecure)
	if err != nil {
		return "", err
	}
	if err := remote.Write(dst, withWatchdog, remote.WithContext(ctx)); err != nil {
		return "", err
	}
	d, err := withWatchdog.Digest()
	if err != nil {
		return "", err
	}
	return b.reg.Host + "/base/static-watchdog@" + d.String(), nil
}

// koWatchdogImage builds go-main with ko once more, on the base with the
// watchdog, and returns the image's manifest.
func (b *bench) koWatchdogImage(ctx context.Context, ko *tool) (*registrytest.Manifest, error) {
	base, err := b.pushWatchdogBase(ctx)
	if err != nil {
		return nil, fmt.Errorf("pushing the base with the watchdog: %w", err)
	}
	t := &tool{name: koWatchdog, command: func(ctx context.Context, repo, cache string) *exec.Cmd {
		cmd := ko.command(ctx, repo, cache)
		// The last of duplicate keys wins.
		cmd.Env = append(cmd.Env, "KO_DEFAULTBASEIMAGE="+base)
		return cmd
	}}
	repo := "ko-main-watchdog"
	if _, err := b.once(ctx, t, repo, b.newDir("cache-"+repo)); err != nil {
		return nil, err
	}
	return b.reg.Manifest(ctx, repo, "latest")
}
