package executorimage

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"path/filepath"
	"slices"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kiln-build/kiln/builder"
	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/internal/contract"
	"github.com/kiln-build/kiln/layers"
	"github.com/kiln-build/kiln/runtime-images/bases"
)

// The images, by the tag each is pushed under.
const (
	Go     = "go"
	Node   = "node"
	Python = "python"
	Java   = "java"
	// All has every toolchain; kiln job runs it unless told otherwise.
	All = "all"
)

// Names lists the images in the order they are built and reported.
var Names = []string{Go, Node, Python, Java, All}

// Groups are the Debian package groups images.yaml may name.
var Groups = []string{"git", "strip", "java", "python"}

// What every image holds and says, as kaniko's image does where kiln
// takes its place.
const (
	// Executor is where kaniko's Job manifests run the executor.
	Executor = "/kaniko/executor"
	// DockerConfig is where kaniko reads registry credentials.
	DockerConfig = "/kaniko/.docker"
	// Workspace is kaniko's default build context folder.
	Workspace = "/workspace"
	// KanikoCerts is where kaniko's Job manifests mount extra CA
	// certificates; kiln reads them too (SSL_CERT_DIR).
	KanikoCerts = "/kaniko/ssl/certs"
)

// Label keys. A toolchain's version is under LabelToolchain + its name:
// dev.kiln.toolchain.go=1.26.8.
const (
	LabelToolchain = "dev.kiln.toolchain."
	// LabelLock holds the digest of the images' lock.
	LabelLock = "dev.kiln.executor-image.lock"
	// LabelLocalCAs lists, comma-separated, the CA certificate files the
	// images trust beside Debian's (WithLocalCAs).
	LabelLocalCAs = "dev.kiln.executor-image.local-cas"
)

// contents returns what an image holds beside the debian base, the
// system files and kiln: its Debian groups and toolchains.
func contents(name string) (groups []string, goTool, nodeTool bool) {
	switch name {
	case Go:
		return []string{"git"}, true, false
	case Node:
		return []string{"git", "strip"}, false, true
	case Python:
		return []string{"git", "python"}, false, false
	case Java:
		return []string{"git", "strip", "java"}, false, false
	}
	return []string{"git", "strip", "java", "python"}, true, true
}

// Option changes where the images' inputs come from.
type Option func(*options) error

type options struct {
	spec                        *Spec
	lock                        *Lock
	client                      *http.Client
	goProxy, npmRegistry, sumDB string
	localCAs                    []bases.LocalCA
}

// WithSpec builds from s and l instead of the spec and lock compiled into
// kiln; Refresh ignores l, which may be nil.
func WithSpec(s *Spec, l *Lock) Option {
	return func(o *options) error {
		if s == nil {
			return errors.New("WithSpec: no spec")
		}
		o.spec, o.lock = s, l
		return nil
	}
}

// WithHTTPClient sets the client of every download. The default is
// http.DefaultClient.
func WithHTTPClient(c *http.Client) Option {
	return func(o *options) error { o.client = c; return nil }
}

// WithGoProxy sets the Go module proxy the toolchain comes from. The
// default is DefaultGoProxy; callers pass the first proxy of GOPROXY.
func WithGoProxy(url string) Option {
	return func(o *options) error { o.goProxy = strings.TrimSuffix(url, "/"); return nil }
}

// WithNPMRegistry sets the npm registry Node and npm come from. The
// default is DefaultNPMRegistry.
func WithNPMRegistry(url string) Option {
	return func(o *options) error { o.npmRegistry = strings.TrimSuffix(url, "/"); return nil }
}

// WithSumDB sets the checksum database Refresh checks the toolchain
// against. The default is sum.golang.org through the Go proxy (its
// /sumdb/sum.golang.org), as the go command asks it when it can.
func WithSumDB(url string) Option {
	return func(o *options) error { o.sumDB = strings.TrimSuffix(url, "/"); return nil }
}

// WithLocalCAs makes the images trust cas beside Debian's CA
// certificates: a company's, whose proxy or mirror the toolchains reach
// the package registries through. Go, OpenSSL, pip and Node read them from
// the image's CA bundle, Maven and the JDK from its Java trust store. Two
// files of one name are an error.
func WithLocalCAs(cas ...bases.LocalCA) Option {
	return func(o *options) error {
		for i, ca := range cas {
			if slices.ContainsFunc(cas[:i], func(c bases.LocalCA) bool { return c.Name == ca.Name }) {
				return fmt.Errorf("two CA certificate files are named %s in the image", ca.Name)
			}
		}
		o.localCAs = cas
		return nil
	}
}

func newOptions(opts []Option) (options, error) {
	o := options{client: http.DefaultClient, goProxy: DefaultGoProxy, npmRegistry: DefaultNPMRegistry}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return o, err
		}
	}
	if o.sumDB == "" {
		o.sumDB = o.goProxy + "/sumdb/sum.golang.org"
	}
	if o.spec == nil {
		s, err := BuiltinSpec()
		if err != nil {
			return o, err
		}
		o.spec = s
	}
	return o, nil
}

// Source assembles the executor images for the builder: it is a
// builder.BaseSource whose bases are the images, named as Names.
type Source struct {
	o    options
	deb  bases.Fetcher
	kiln string
	dl   *downloads
}

var _ builder.BaseSource = (*Source)(nil)

// NewSource returns the images made of the pinned inputs, whose Debian
// packages deb fetches, with kiln the file at kilnBinary (a static Linux
// build, as `make build` makes). Downloads are kept in store.
func NewSource(store *cache.Store, deb bases.Fetcher, kilnBinary string, opts ...Option) (*Source, error) {
	o, err := newOptions(opts)
	if err == nil && o.lock == nil {
		o.lock, err = BuiltinLock()
	}
	if err != nil {
		return nil, fmt.Errorf("making the executor images: %w", err)
	}
	if store == nil || deb == nil || kilnBinary == "" {
		return nil, errors.New("making the executor images: a cache, a Debian fetcher and kiln's binary are needed")
	}
	return &Source{o: o, deb: deb, kiln: kilnBinary, dl: &downloads{store: store, client: o.client, goProxy: o.goProxy, npmRegistry: o.npmRegistry}}, nil
}

// Base implements builder.BaseSource: the image called name for platform.
// Packages are refused: the images hold what the lock pins.
func (s *Source) Base(ctx context.Context, name string, p v1.Platform, packages []string) (*builder.Base, error) {
	if !slices.Contains(Names, name) {
		return nil, fmt.Errorf("no executor image %q (known: %s)", name, strings.Join(Names, ", "))
	}
	if len(packages) > 0 {
		return nil, fmt.Errorf("the executor image %s takes no extra packages", name)
	}
	arch := p.Architecture
	deb, err := bases.Lookup(DebianBase)
	if err != nil {
		return nil, err
	}
	// Maven and the JDK read the CA certificates from this Java trust
	// store, which Debian's ca-certificates-java would generate.
	deb.JavaTrustStore = "etc/ssl/certs/java/cacerts"
	deb.LocalCAs = s.o.localCAs
	baseLock, err := deb.Lock.Digest()
	if err != nil {
		return nil, err
	}
	spec, lock := s.o.spec, s.o.lock
	if err := lock.check(spec, baseLock, arch); err != nil {
		return nil, err
	}
	lockDigest, err := lock.Digest()
	if err != nil {
		return nil, err
	}
	base, err := bases.Assemble(ctx, deb, arch, s.deb)
	if err != nil {
		return nil, err
	}
	steps := []layers.Step{
		s.merge("debian "+DebianBase+" base", base.Steps),
		layers.FilesStep("executor folders", []layers.File{
			layers.Dir(path.Dir(Executor)[1:], 0o755),
			layers.Dir(DockerConfig[1:], 0o755),
			layers.Dir(KanikoCerts[1:], 0o755),
			{Path: Workspace[1:], Mode: fs.ModeDir | 0o755, UID: contract.UID, GID: contract.GID},
		}),
	}
	groups, goTool, nodeTool := contents(name)
	labels := map[string]string{LabelLock: lockDigest}
	if len(s.o.localCAs) > 0 {
		var names []string
		for _, ca := range s.o.localCAs {
			names = append(names, ca.Name)
		}
		slices.Sort(names)
		labels[LabelLocalCAs] = strings.Join(names, ",")
	}
	for _, g := range groups {
		pkgs := lock.Debian[g][arch]
		withGroup, err := bases.Assemble(ctx, deb, arch, s.deb, bases.WithExtraPackages(pkgs))
		if err != nil {
			return nil, err
		}
		steps = append(steps, s.merge("debian "+g, withGroup.Steps[len(base.Steps):]))
		for _, p := range pkgs {
			if tool, ok := debianToolchains[p.Name]; ok {
				labels[LabelToolchain+tool] = debianVersion(p.Version)
			}
		}
	}
	bins := []string{"/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"}
	env := []string{"HOME=/tmp", "DOCKER_CONFIG=" + DockerConfig, "SSL_CERT_DIR=/etc/ssl/certs:" + KanikoCerts, "SSL_CERT_FILE=" + bases.CABundle}
	if slices.Contains(groups, "java") {
		home := "/usr/lib/jvm/java-17-openjdk-" + arch
		bins = append([]string{home + "/bin", "/usr/share/maven/bin"}, bins...)
		// Java takes user.home from /etc/passwd, not HOME: Maven's
		// ~/.m2 would be under the read-only /home/app, and with another
		// uid than the image's under no folder at all.
		env = append(env, "JAVA_HOME="+home, "MAVEN_OPTS=-Duser.home=/tmp")
	}
	if goTool {
		steps = append(steps, &goStep{goVersion: spec.Go, arch: arch, t: lock.Go[arch], dl: s.dl})
		bins = append([]string{GoRoot + "/bin"}, bins...)
		// The toolchain in the image is the one to use: a go line asking
		// for a newer Go fails rather than downloading one.
		env = append(env, "GOTOOLCHAIN=local")
		labels[LabelToolchain+"go"] = spec.Go
	}
	if nodeTool {
		steps = append(steps, &nodeStep{node: lock.Node[arch], npm: lock.NPM, dl: s.dl})
		// Node trusts its own copy of Mozilla's CAs; this adds the
		// image's bundle, where a cluster mounts its own CAs.
		env = append(env, "NODE_EXTRA_CA_CERTS="+bases.CABundle)
		labels[LabelToolchain+"node"] = spec.Node
		labels[LabelToolchain+"npm"] = spec.NPM
	}
	kiln, err := s.kilnFiles(arch)
	if err != nil {
		return nil, err
	}
	steps = append(steps, layers.FilesStep("kiln", kiln))
	return &builder.Base{Name: name, Steps: steps, Config: v1.Config{
		User:       fmt.Sprintf("%d:%d", contract.UID, contract.GID),
		WorkingDir: Workspace,
		Entrypoint: []string{Executor},
		Env:        append([]string{"PATH=" + strings.Join(bins, ":")}, env...),
		Labels:     labels,
	}}, nil
}

// debianToolchains names the Debian packages whose versions the images'
// labels carry, by toolchain.
var debianToolchains = map[string]string{
	"openjdk-17-jdk-headless": "java",
	"maven":                   "maven",
	"python3":                 "python",
	"git":                     "git",
}

// debianVersion returns the upstream part of a Debian version:
// "17.0.17+10-1~deb12u1" → "17.0.17+10", "1:2.39.5-0+deb12u2" → "2.39.5".
func debianVersion(v string) string {
	if _, after, ok := strings.Cut(v, ":"); ok {
		v = after
	}
	if i := strings.LastIndexByte(v, '-'); i > 0 {
		v = v[:i]
	}
	return v
}

// kilnFiles returns kiln at Executor, linked from /usr/local/bin, and the
// watchdogs found beside it (kiln-watchdog-linux-<arch>, as `make build`
// leaves them), which kiln puts in every function image and looks for
// beside itself. The image's own architecture's is required.
func (s *Source) kilnFiles(arch string) ([]layers.File, error) {
	files := []layers.File{
		layers.HostFile(Executor[1:], 0o755, s.kiln),
		layers.Symlink("usr/local/bin/kiln", Executor),
	}
	watchdogs, err := filepath.Glob(filepath.Join(filepath.Dir(s.kiln), "kiln-watchdog-linux-*"))
	if err != nil {
		return nil, err
	}
	own := false
	for _, w := range watchdogs {
		name := filepath.Base(w)
		own = own || name == "kiln-watchdog-linux-"+arch
		files = append(files, layers.HostFile(path.Join(path.Dir(Executor)[1:], name), 0o755, w))
	}
	if !own {
		return nil, fmt.Errorf("no kiln-watchdog-linux-%s beside %s: build both with make build", arch, s.kiln)
	}
	return files, nil
}

func (s *Source) merge(name string, steps []layers.Step) layers.Step {
	return &mergeStep{name: name, steps: steps, tmp: s.dl.store.TempDir}
}
