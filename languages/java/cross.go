package java

import (
	"context"
	"fmt"
	"strings"

	"github.com/kiln-build/kiln/runtime-images/bases"
	"github.com/kiln-build/kiln/runtime-images/debian"
)

// PackageIndex reads the signed package index of a Debian suite;
// *debian.Fetcher is one.
type PackageIndex interface {
	Index(ctx context.Context, suite, component, arch string) (*debian.Index, error)
}

var _ PackageIndex = (*debian.Fetcher)(nil)

// WithDebian sets where the pack looks up Debian's JDK packages for other
// platforms. The default is none: a cross-build's error names only this
// machine's JDK.
func WithDebian(ix PackageIndex) Option { return func(o *options) { o.debian = ix } }

// crossBuildError explains why kiln cannot link a runtime for another
// architecture: jlink links another platform's jmods only when they come
// from the very JDK build the host's jlink belongs to (its plugins generate
// java.base classes against them), and Debian's archive keeps only the
// newest build of each suite. It names this machine's JDK, the builds the
// mirror holds for that architecture and the one that would be needed.
func (p *Pack) crossBuildError(ctx context.Context, platform, arch string, j *jdk, base *bases.Recipe) error {
	major := strings.SplitN(j.version, ".", 2)[0]
	pkg := "openjdk-" + major + "-jdk-headless"
	var msg strings.Builder
	fmt.Fprintf(&msg, "cross-building Java for %s: kiln does not link another platform's runtime yet; it would link Debian's %s jmods for %s with this machine's jlink, which needs both from one JDK build", platform, pkg, arch)
	host, isDebian := debianUpstream(j)
	if isDebian {
		fmt.Fprintf(&msg, "; this JDK (%s) is Debian's %s", j.home, host)
	} else {
		fmt.Fprintf(&msg, "; this JDK (%s) is %s, not a Debian build", j.home, j.build)
	}
	var found []string
	match := ""
	if p.opts.debian == nil {
		found = append(found, "not looked up")
	} else {
		for _, suite := range base.Suites {
			ix, err := p.opts.debian.Index(ctx, suite, base.Component, arch)
			if err != nil {
				found = append(found, suite+": "+err.Error())
				continue
			}
			if pk, err := ix.Package(pkg); err == nil {
				found = append(found, pk.Version+" ("+suite+")")
				if up, _, _ := cutRevision(pk.Version); isDebian && up == host {
					match = pk.Version
				}
			}
		}
		if len(found) == 0 {
			found = append(found, "none")
		}
	}
	fmt.Fprintf(&msg, "; the Debian mirror's %s for %s: %s", pkg, arch, strings.Join(found, ", "))
	switch {
	case match != "":
		fmt.Fprintf(&msg, " (%s is this JDK's build)", match)
	case isDebian:
		fmt.Fprintf(&msg, "; needed: %s %s for %s, which the mirror does not list", pkg, host, arch)
	}
	fmt.Fprintf(&msg, ": build on %s hardware", arch)
	return fmt.Errorf("%s", msg.String())
}

// debianUpstream returns the upstream version of a Debian JDK build,
// "17.0.15+6" for the runtime version "17.0.15+6-Debian-1deb12u1": the part
// of its package version ("17.0.15+6-1~deb12u1") that names the build.
func debianUpstream(j *jdk) (string, bool) {
	_, rest, ok := strings.Cut(j.build, " ")
	if !ok || !strings.HasPrefix(j.build, "Debian ") {
		return "", false
	}
	up, _, ok := strings.Cut(rest, "-Debian-")
	return up, ok
}

// cutRevision splits a Debian version at its last hyphen into the
// upstream version and the Debian revision.
func cutRevision(v string) (upstream, revision string, ok bool) {
	i := strings.LastIndex(v, "-")
	if i < 0 {
		return v, "", false
	}
	return v[:i], v[i+1:], true
}
