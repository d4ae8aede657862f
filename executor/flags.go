package executor

import (
	"errors"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/kiln-build/kiln/internal/usage"
)

// Flags are kaniko's executor flags, with kiln's few additions (--lang,
// --function).
type Flags struct {
	// Build context.
	Dockerfile, Context, ContextSubPath, Bucket string
	Git                                         map[string]string

	// Outputs.
	Destinations                                  []string
	NoPush, NoPushCache                           bool
	TarPath, OCILayoutPath                        string
	DigestFile, NameDigestFile, NameTagDigestFile string
	Labels, Annotations                           []string
	ImageFormat, Compression                      string
	CompressionLevel                              int

	// Cache.
	Cache                           bool
	CacheRepo, CacheDir             string
	CacheTTL                        time.Duration
	CacheRunLayers, CacheCopyLayers bool
	CompressedCaching               bool

	// Snapshots: kiln takes none, it knows what each step writes.
	SnapshotMode                            string
	SingleSnapshot, UseNewRun, IgnoreVarRun bool
	IgnorePaths                             []string

	Reproducible     bool
	CustomPlatform   string
	BuildArgs        []string
	Target           string
	SkipUnusedStages bool
	Secrets          []string

	// Registries.
	Insecure, SkipTLSVerify, InsecurePull, SkipTLSVerifyPull bool
	InsecureRegistries, SkipTLSVerifyRegistries              []string
	RegistryCertificates                                     map[string]string
	RegistryClientCerts                                      []string
	RegistryMirrors, RegistryMaps                            []string
	SkipDefaultRegistryFallback                              bool

	// Operational.
	Cleanup, SkipPushPermissionCheck, Force, LogTimestamp bool
	ForceBuildMetadata, PushIgnoreImmutableTagErrors      bool
	PushRetry, ImageFSExtractRetry, ImageDownloadRetry    int
	KanikoDir, Verbosity, LogFormat                       string

	// kiln's own.
	Lang, Function string
}

// deprecated are kaniko's old flag names and the names they stand for.
var deprecated = map[string]string{"tarPath": "tar-path", "snapshotMode": "snapshot-mode", "customPlatform": "custom-platform", "whitelist-var-run": "ignore-var-run"}

// NewFlagSet returns the flag set that fills f, with kaniko's defaults.
func (f *Flags) NewFlagSet() *pflag.FlagSet {
	fl := pflag.NewFlagSet("executor", pflag.ContinueOnError)
	fl.SetOutput(io.Discard)
	fl.SetNormalizeFunc(func(_ *pflag.FlagSet, n string) pflag.NormalizedName {
		if to, ok := deprecated[n]; ok {
			return pflag.NormalizedName(to)
		}
		return pflag.NormalizedName(n)
	})
	fl.StringVarP(&f.Dockerfile, "dockerfile", "f", "Dockerfile", "path of the Dockerfile: as given, else in the context; or an http(s) URL")
	fl.StringVarP(&f.Context, "context", "c", "/workspace/", "build context: DIR, dir://DIR, tar://FILE (gzip or not), tar://stdin, http(s)://URL of a tar(.gz), git://REPO[#REF[#COMMIT]] or oci://REGISTRY/REPO@sha256:... (kiln's build context artifact)")
	fl.StringVar(&f.ContextSubPath, "context-sub-path", "", "subfolder of the context to build")
	fl.StringVarP(&f.Bucket, "bucket", "b", "", "kaniko's GCS context bucket: not supported, use --context oci:// or http(s)://")
	fl.StringToStringVar(&f.Git, "git", map[string]string{}, "git clone options: branch=,single-branch=,depth=,recurse-submodules=,insecure-skip-tls=")

	fl.StringArrayVarP(&f.Destinations, "destination", "d", nil, "image reference to push; repeatable (one build, several tags)")
	fl.BoolVar(&f.NoPush, "no-push", false, "build without pushing the image (env KANIKO_NO_PUSH too)")
	fl.BoolVar(&f.NoPushCache, "no-push-cache", false, "read --cache-repo without pushing layers to it")
	fl.StringVar(&f.TarPath, "tar-path", "", "also write the image as a docker tarball with the destinations' tags")
	fl.StringVar(&f.OCILayoutPath, "oci-layout-path", "", "also write the image into this OCI image layout folder")
	fl.StringVar(&f.DigestFile, "digest-file", "", "write the image's digest (sha256:...) to this file, e.g. /dev/termination-log")
	fl.StringVar(&f.NameDigestFile, "image-name-with-digest-file", "", "write NAME@DIGEST of each destination to this file")
	fl.StringVar(&f.NameTagDigestFile, "image-name-tag-with-digest-file", "", "write NAME:TAG@DIGEST of each destination to this file")
	fl.StringArrayVar(&f.Labels, "label", nil, "image label KEY=VALUE; repeatable")
	fl.StringArrayVar(&f.Annotations, "annotation", nil, "manifest annotation KEY=VALUE (the fork's); repeatable")
	fl.StringVar(&f.ImageFormat, "image-format", "oci", "the fork's image format: oci (kiln's); docker is refused")
	fl.StringVar(&f.Compression, "compression", "gzip", "the fork's layer compression: gzip (kiln's); zstd is refused")
	fl.IntVar(&f.CompressionLevel, "compression-level", -1, "no effect: kiln compresses each layer once, for speed")

	fl.BoolVar(&f.Cache, "cache", false, "read and write step layers in --cache-repo")
	fl.StringVar(&f.CacheRepo, "cache-repo", "", "cache repository (default: <first destination's repository>/cache)")
	fl.StringVar(&f.CacheDir, "cache-dir", "/cache", "kaniko's read-only base-image cache: no effect (kiln's cache is $KILN_CACHE_DIR)")
	fl.DurationVar(&f.CacheTTL, "cache-ttl", 336*time.Hour, "no effect: kiln's cache entries are keyed by content and never stale")
	fl.BoolVar(&f.CacheRunLayers, "cache-run-layers", true, "no effect: kiln caches every step")
	fl.BoolVar(&f.CacheCopyLayers, "cache-copy-layers", false, "no effect: kiln caches every step")
	fl.BoolVar(&f.CompressedCaching, "compressed-caching", true, "no effect: kiln streams layers to disk, not memory")

	fl.StringVar(&f.SnapshotMode, "snapshot-mode", "full", "no effect (full, redo or time): kiln takes no snapshots")
	fl.BoolVar(&f.SingleSnapshot, "single-snapshot", false, "no effect: kiln keeps a layer per step so an edit uploads one")
	fl.BoolVar(&f.UseNewRun, "use-new-run", false, "no effect: kiln takes no snapshots")
	fl.BoolVar(&f.IgnoreVarRun, "ignore-var-run", true, "no effect: kiln takes no snapshots")
	fl.StringArrayVar(&f.IgnorePaths, "ignore-path", nil, "no effect: kiln takes no snapshots")

	fl.BoolVar(&f.Reproducible, "reproducible", false, "no effect: kiln's images always are (SOURCE_DATE_EPOCH, else 1970)")
	fl.StringVar(&f.CustomPlatform, "custom-platform", "", "platform to build for, OS/ARCH[/VARIANT] (default the host's)")
	fl.StringArrayVar(&f.BuildArgs, "build-arg", nil, "build argument KEY=VALUE, or KEY to take it from the environment; repeatable")
	fl.StringVar(&f.Target, "target", "", "Dockerfile stage to build")
	fl.BoolVar(&f.SkipUnusedStages, "skip-unused-stages", false, "no effect: kiln builds only the stages the target needs")
	fl.StringArrayVar(&f.Secrets, "secret", nil, "the fork's build secrets: not supported, refused")

	fl.BoolVar(&f.Insecure, "insecure", false, "push over plain HTTP")
	fl.BoolVar(&f.SkipTLSVerify, "skip-tls-verify", false, "skip TLS verification of the destinations' registries")
	fl.BoolVar(&f.InsecurePull, "insecure-pull", false, "pull base images over plain HTTP: from the registries the Dockerfile's FROM lines name (not through an ARG: name those with --insecure-registry)")
	fl.BoolVar(&f.SkipTLSVerifyPull, "skip-tls-verify-pull", false, "skip TLS verification of base images' registries")
	fl.StringArrayVar(&f.InsecureRegistries, "insecure-registry", nil, "registry spoken to over plain HTTP; repeatable")
	fl.StringArrayVar(&f.SkipTLSVerifyRegistries, "skip-tls-verify-registry", nil, "registry whose TLS certificate is not verified; repeatable")
	fl.StringToStringVar(&f.RegistryCertificates, "registry-certificate", map[string]string{}, "HOST=PATH of a CA certificate for a registry; repeatable")
	fl.StringArrayVar(&f.RegistryClientCerts, "registry-client-cert", nil, "HOST=CERT,KEY client certificate (mTLS) for a registry; repeatable")
	fl.StringArrayVar(&f.RegistryMirrors, "registry-mirror", nil, "mirror tried before Docker Hub, HOST[:PORT][/PATH]; repeatable (env KANIKO_REGISTRY_MIRROR, comma-separated)")
	fl.StringArrayVar(&f.RegistryMaps, "registry-map", nil, "ORIG=REMAP[;ORIG=REMAP...]: pull ORIG's images from REMAP (docker.io only for now, as a mirror); repeatable")
	fl.BoolVar(&f.SkipDefaultRegistryFallback, "skip-default-registry-fallback", false, "fail a Docker Hub image no --registry-mirror has, rather than pull it from Docker Hub")

	fl.BoolVar(&f.Cleanup, "cleanup", false, "no effect: kiln never unpacks images into /, it leaves nothing to clean")
	fl.IntVar(&f.PushRetry, "push-retry", 0, "no effect: kiln retries registry requests itself (4 times, with backoff)")
	fl.IntVar(&f.ImageFSExtractRetry, "image-fs-extract-retry", 0, "no effect: kiln never extracts images into /")
	fl.IntVar(&f.ImageDownloadRetry, "image-download-retry", 0, "no effect: kiln retries registry requests itself")
	fl.BoolVar(&f.ForceBuildMetadata, "force-build-metadata", false, "no effect: kiln's images always carry their history and config")
	fl.BoolVar(&f.PushIgnoreImmutableTagErrors, "push-ignore-immutable-tag-errors", false, "no effect: kiln asks the registry first and never pushes an unchanged image onto its tag; another image onto an immutable tag fails")
	fl.BoolVar(&f.SkipPushPermissionCheck, "skip-push-permission-check", false, "no effect: kiln checks nothing before the push; a refused push fails the build")
	fl.StringVar(&f.KanikoDir, "kaniko-dir", "", "no effect: kiln keeps its files in $KILN_CACHE_DIR and $TMPDIR")
	fl.BoolVar(&f.Force, "force", false, "no effect: kiln runs anywhere")
	fl.StringVarP(&f.Verbosity, "verbosity", "v", "info", "log level: panic, fatal, error, warn, info, debug or trace")
	fl.StringVar(&f.LogFormat, "log-format", "color", "no effect beyond checking it (text, color or json): kiln prints plain progress lines")
	fl.BoolVar(&f.LogTimestamp, "log-timestamp", false, "no effect: progress lines carry durations")

	fl.StringVar(&f.Lang, "lang", "", "kiln: build the context with this language pack (a stack.yml in the context does the same)")
	fl.StringVar(&f.Function, "function", "", "kiln: the stack function to build when the context's stack file has several")
	return fl
}

// Parse reads args (kaniko's command line) and the environment kaniko
// reads (KANIKO_NO_PUSH, KANIKO_REGISTRY_MIRROR). Every mistake is a
// usage error naming the flag.
func Parse(args []string, getenv func(string) string) (*Flags, error) {
	f := &Flags{}
	fl := f.NewFlagSet()
	if err := fl.Parse(args); err != nil {
		return nil, usage.Wrap(flagError(err))
	}
	if fl.NArg() > 0 {
		return nil, usage.Errorf("unexpected argument %q: the executor takes flags only", fl.Arg(0))
	}
	if v := getenv("KANIKO_NO_PUSH"); v != "" && !fl.Changed("no-push") {
		f.NoPush = v == "true" || v == "1"
	}
	if v := getenv("KANIKO_REGISTRY_MIRROR"); v != "" && !fl.Changed("registry-mirror") {
		f.RegistryMirrors = strings.Split(v, ",")
	}
	return f, f.check()
}

// flagError keeps pflag's message, which names the flag ("unknown flag:
// --x", "unknown shorthand flag: 'x' in -x").
func flagError(err error) error {
	if errors.Is(err, pflag.ErrHelp) {
		return errors.New("--help: see kaniko's flags in kiln executor --help")
	}
	return err
}

// check refuses what kiln cannot do as kaniko would, rather than do
// something else.
func (f *Flags) check() error {
	switch {
	case len(f.Destinations) == 0 && !f.NoPush:
		return usage.Errorf("--destination or --no-push is required")
	case (f.TarPath != "" || f.NameDigestFile != "" || f.NameTagDigestFile != "") && len(f.Destinations) == 0:
		return usage.Errorf("--tar-path and --image-name-*-digest-file need --destination: they name the image by it")
	case f.Bucket != "":
		return usage.Errorf("--bucket: kiln reads no GCS bucket; push the context with kiln job (--context oci://...) or serve it over http(s)")
	case len(f.Secrets) > 0:
		return usage.Errorf("--secret: not supported by kiln's executor yet; kiln job mounts dependency credentials for the install")
	case f.ImageFormat != "oci":
		return usage.Errorf("--image-format %q: kiln writes oci images only", f.ImageFormat)
	case f.Compression != "gzip":
		return usage.Errorf("--compression %q: kiln writes gzip layers only", f.Compression)
	case f.Cache && f.NoPush && f.CacheRepo == "":
		return usage.Errorf("--cache with --no-push: name the cache repository with --cache-repo")
	case strings.HasPrefix(f.CacheRepo, "oci:"):
		return usage.Errorf("--cache-repo %s: kiln keeps a cache repository in a registry only (its local cache is $KILN_CACHE_DIR)", f.CacheRepo)
	}
	if !slices.Contains([]string{"full", "redo", "time"}, f.SnapshotMode) {
		return usage.Errorf("--snapshot-mode %q: want full, redo or time", f.SnapshotMode)
	}
	if !slices.Contains([]string{"text", "color", "json"}, f.LogFormat) {
		return usage.Errorf("--log-format %q: want text, color or json", f.LogFormat)
	}
	if !slices.Contains([]string{"panic", "fatal", "error", "warn", "info", "debug", "trace"}, f.Verbosity) {
		return usage.Errorf("--verbosity %q: want panic, fatal, error, warn, info, debug or trace", f.Verbosity)
	}
	for k := range f.Git {
		if !slices.Contains([]string{"branch", "single-branch", "depth", "recurse-submodules", "insecure-skip-tls"}, k) {
			return usage.Errorf("--git %s: want branch=, single-branch=, depth=, recurse-submodules= or insecure-skip-tls=", k)
		}
	}
	return nil
}

// Debug says whether -v asks for kiln's debug log.
func (f *Flags) Debug() bool { return f.Verbosity == "debug" || f.Verbosity == "trace" }
