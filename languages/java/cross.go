package java

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	"pault.ag/go/debian/version"

	"github.com/kiln-build/kiln/languages"
	"github.com/kiln-build/kiln/layers"
)

// WithDebian sets where the pack fetches Debian's JDK for other platforms,
// whose jmods a cross-build links: the suites of the java base. The
// default is none: cross-builds fail with an error saying so.
func WithDebian(d languages.Debian) Option {
	return func(o *options) error { o.debian = d; return nil }
}

// targetJDK is another platform's JDK: the Debian package whose jmods
// jlink links into the runtime.
type targetJDK struct {
	pkg languages.Deb
	// jmods is the directory of its .jmod files.
	jmods string
	// version is its upstream version, e.g. 17.0.19.
	version string
}

// crossJDK finds Debian's JDK for arch in the java base's suites, the
// newest build that this machine's jlink can link (jlink takes the jmods
// of its own feature and interim release: 17.0.x for a 17.0.y jlink),
// downloads it, verified against the signed index, and unpacks its jmods
// into the pack's cache, keyed by the package's checksum.
func (b *build) crossJDK(ctx context.Context, platform, arch string) (*targetJDK, error) {
	major, release := jdkRelease(b.jdk.version)
	pkgName := "openjdk-" + major + "-jdk-headless"
	fail := func(format string, args ...any) error {
		return fmt.Errorf("cross-building Java for %s: "+format, append([]any{platform}, args...)...)
	}
	if b.pack.opts.debian == nil {
		return nil, fail("no Debian mirror to fetch %s for %s from", pkgName, arch)
	}
	offered, err := b.pack.opts.debian.Versions(ctx, baseName, arch, pkgName)
	if err != nil {
		return nil, fail("%w", err)
	}
	var best *languages.Deb
	var bestVersion version.Version
	var seen []string
	for _, pk := range offered {
		seen = append(seen, pk.Version+" ("+pk.Suite+")")
		if _, rel := jdkRelease(pk.Version); rel != release {
			continue
		}
		v, err := version.Parse(pk.Version)
		if err != nil {
			return nil, fail("%s %s: %w", pkgName, pk.Version, err)
		}
		if best == nil || version.Compare(v, bestVersion) > 0 {
			best, bestVersion = &pk, v
		}
	}
	if best == nil {
		if len(seen) == 0 {
			seen = []string{"none"}
		}
		return nil, fail("Debian's mirror has no %s for %s that this JDK's jlink (%s, %s) can link, which needs release %s; it has: %s", pkgName, arch, b.jdk.home, b.jdk.version, release, strings.Join(seen, ", "))
	}
	key := layers.NewKey("java/jmods/v1").String(best.SHA256).String(best.Unpacker).Sum()
	dir, err := b.cached(ctx, "jmods", key, func(dir string) error {
		return extractJmods(ctx, b.pack.opts.debian, *best, dir)
	})
	if err != nil {
		return nil, fail("%w", err)
	}
	up, _, _ := strings.Cut(best.Version, "+")
	return &targetJDK{pkg: *best, jmods: filepath.Join(dir, "jmods"), version: up}, nil
}

// extractJmods unpacks the .jmod files of a Debian JDK package into
// dir/jmods, leaving the rest of the package out.
func extractJmods(ctx context.Context, d languages.Debian, p languages.Deb, dir string) error {
	tmp := filepath.Join(dir, "deb")
	if err := os.Mkdir(tmp, 0o700); err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	files, err := d.Unpack(ctx, p, tmp)
	if err != nil {
		return err
	}
	out := filepath.Join(dir, "jmods")
	if err := os.Mkdir(out, 0o755); err != nil {
		return err
	}
	found := false
	for _, f := range files {
		// usr/lib/jvm/java-17-openjdk-arm64/jmods/java.base.jmod
		if !f.Mode.IsRegular() || path.Ext(f.Path) != ".jmod" || path.Base(path.Dir(f.Path)) != "jmods" {
			continue
		}
		name := path.Base(f.Path)
		if err := os.Rename(f.Source, filepath.Join(out, name)); err != nil {
			return fmt.Errorf("unpacking %s: %w", f.Path, err)
		}
		found = found || name == "java.base.jmod"
	}
	if !found {
		return errors.New(p.Name + " " + p.Version + " has no jmods/java.base.jmod")
	}
	return nil
}

// jdkRelease returns the feature release and the feature.interim release
// that jlink must match: "17" and "17.0" for the runtime version 17.0.15
// and for the package version 17.0.19+10-1~deb12u2.
func jdkRelease(v string) (major, release string) {
	v, _, _ = strings.Cut(v, "+")
	parts := strings.SplitN(v, ".", 3)
	major = parts[0]
	interim := "0"
	if len(parts) > 1 {
		interim = parts[1]
	}
	return major, major + "." + interim
}
