package bases

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kiln-build/kiln/builder"
	"github.com/kiln-build/kiln/internal/contract"
	"github.com/kiln-build/kiln/layers"
	"github.com/kiln-build/kiln/runtime-images/debian"
)

// CABundle is where bases with ca-certificates keep the bundle. The user,
// working directory and PATH every base shares are the image contract's.
const CABundle = "/etc/ssl/certs/ca-certificates.crt"

// Labels a base puts in its image config.
const (
	// LabelRecipe names the recipe.
	LabelRecipe = "io.github.kiln-build.base.recipe"
	// LabelLock holds the digest of the recipe's lock file.
	LabelLock = "io.github.kiln-build.base.lock"
	// LabelExtra lists packages added on top of the recipe's, as
	// NAME=VERSION separated by spaces.
	LabelExtra = "io.github.kiln-build.base.extra"
)

// Fetcher reads the signed indexes of a Debian mirror and downloads
// verified packages from it; *debian.Fetcher is one.
type Fetcher interface {
	// Index returns the packages of a suite's component for arch.
	Index(ctx context.Context, suite, component, arch string) (*debian.Index, error)
	// Download returns the path of p's .deb, checked against p.Size and
	// p.SHA256.
	Download(ctx context.Context, p debian.Package) (string, error)
}

var _ Fetcher = (*debian.Fetcher)(nil)

// Option changes how a base is assembled.
type Option func(*options) error

type options struct {
	epoch time.Time
	extra []LockedPackage
}

// WithExtraPackages adds pinned packages (see Extend) on top of the
// recipe's, each a layer of its own after the base's layers, so that the
// base's layers stay shared with images that add nothing. Default none.
func WithExtraPackages(pkgs []LockedPackage) Option {
	return func(o *options) error {
		o.extra = slices.Clone(pkgs)
		return nil
	}
}

// WithEpoch sets the modification time of every layer entry. The default
// is the Unix epoch; callers pass SOURCE_DATE_EPOCH when it is set.
func WithEpoch(t time.Time) Option {
	return func(o *options) error {
		o.epoch = t.UTC()
		return nil
	}
}

// Assemble returns the base the recipe makes for a Debian architecture
// ("amd64", "arm64"), from its lock, ready for the builder: its steps
// build the layers, bottom first (one per package in name order, /etc/shells
// when the recipe configures debianutils, one of generated system files,
// then one per extra package), and its config
// starts the image's. The steps' keys cover everything that decides their
// bytes. Nothing is downloaded here: the steps fetch their package through
// f when the builder runs them.
func Assemble(ctx context.Context, r *Recipe, arch string, f Fetcher, opts ...Option) (*builder.Base, error) {
	o := options{epoch: time.Unix(0, 0).UTC()}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, fmt.Errorf("assembling %s: %w", r.Name, err)
		}
	}
	if !slices.Contains(r.Architectures, arch) {
		return nil, &UnsupportedArchError{Recipe: r.Name, Arch: arch, Supported: r.Architectures}
	}
	pkgs, err := r.locked(arch)
	if err != nil {
		return nil, err
	}
	lockDigest, err := r.Lock.Digest()
	if err != nil {
		return nil, err
	}
	if _, err := platformOf(arch); err != nil {
		return nil, err
	}
	var merged []string
	if r.MergedUsr {
		merged = mergedDirs(arch)
	}
	b := &builder.Base{Name: r.Name}
	hasCA, hasPasswd := false, false
	for _, p := range pkgs {
		spec := r.spec(p.Name)
		b.Steps = append(b.Steps, &packageStep{
			base:   r.Name,
			pkg:    p.Package(),
			drop:   append(slices.Clone(r.Drop), spec.Drop...),
			hooks:  hooksFor(p.Name, r),
			merged: merged,
			dl:     f,
			epoch:  o.epoch,
		})
		hasCA = hasCA || p.Name == "ca-certificates"
		hasPasswd = hasPasswd || (r.Configure && p.Name == "base-passwd")
	}
	if r.Configure && slices.ContainsFunc(pkgs, func(p LockedPackage) bool { return p.Name == "debianutils" }) {
		all := make([]debian.Package, len(pkgs))
		for i, p := range pkgs {
			all[i] = p.Package()
		}
		b.Steps = append(b.Steps, &shellsStep{base: r.Name, pkgs: all, merged: merged, dl: f, epoch: o.epoch})
	}
	b.Steps = append(b.Steps, layers.FilesStep(r.Name+": users, /tmp, /"+contract.AppDir, systemFiles(!hasPasswd, merged), layers.WithEpoch(o.epoch)))
	var extra []string
	for _, p := range o.extra {
		b.Steps = append(b.Steps, &packageStep{
			base:   r.Name + " extra",
			pkg:    p.Package(),
			drop:   slices.Clone(r.Drop),
			hooks:  hooksFor(p.Name, r),
			merged: merged,
			dl:     f,
			epoch:  o.epoch,
		})
		extra = append(extra, p.Name+"="+p.Version)
	}
	env := []string{"PATH=" + contract.Path}
	if hasCA {
		env = append(env, "SSL_CERT_FILE="+CABundle)
	}
	user := contract.User
	if r.User != "" {
		user = r.User
	}
	b.Config = v1.Config{
		User:       user,
		WorkingDir: "/" + contract.AppDir,
		Env:        append(env, r.Env...),
		Labels:     map[string]string{LabelRecipe: r.Name, LabelLock: lockDigest},
	}
	if len(extra) > 0 {
		b.Config.Labels[LabelExtra] = strings.Join(extra, " ")
	}
	return b, nil
}

// locked returns the pinned packages for arch, after checking that the
// lock is the recipe's current one.
func (r *Recipe) locked(arch string) ([]LockedPackage, error) {
	switch {
	case r.Lock == nil:
		return nil, &StaleLockError{Recipe: r.Name, Reason: "is missing"}
	case r.Lock.Inputs != r.inputs():
		return nil, &StaleLockError{Recipe: r.Name, Reason: "was made for another version of the recipe"}
	}
	pkgs, ok := r.Lock.Architectures[arch]
	if !ok {
		return nil, &StaleLockError{Recipe: r.Name, Reason: "has no packages for " + arch}
	}
	for _, req := range r.requests(arch) {
		if !slices.ContainsFunc(pkgs, func(p LockedPackage) bool { return p.Name == req.Name }) {
			return nil, &StaleLockError{Recipe: r.Name, Reason: fmt.Sprintf("does not pin %s for %s", req.Name, arch)}
		}
	}
	// Name order, whatever the file's, so that layer order is stable.
	pkgs = slices.Clone(pkgs)
	slices.SortFunc(pkgs, func(a, b LockedPackage) int { return strings.Compare(a.Name, b.Name) })
	return pkgs, nil
}

// platformOf maps a Debian architecture to an OCI platform.
func platformOf(arch string) (v1.Platform, error) {
	p := v1.Platform{OS: "linux"}
	switch arch {
	case "amd64", "s390x", "riscv64":
		p.Architecture = arch
	case "arm64":
		p.Architecture, p.Variant = "arm64", "v8"
	case "armhf":
		p.Architecture, p.Variant = "arm", "v7"
	case "armel":
		p.Architecture, p.Variant = "arm", "v5"
	case "i386":
		p.Architecture = "386"
	case "ppc64el":
		p.Architecture = "ppc64le"
	default:
		return p, fmt.Errorf("no OCI platform known for the Debian architecture %s", arch)
	}
	return p, nil
}
