package project

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/kiln-build/kiln/deploy"
	"github.com/kiln-build/kiln/internal/usage"
	"github.com/kiln-build/kiln/publish"
	"github.com/kiln-build/kiln/stack"
)

// StackFlags are the stack-file flags every stack command shares, as in
// faas-cli.
type StackFlags struct {
	File, Filter, Regex, Tag string
	Envsubst                 bool
}

// Add adds the flags to fl.
func (f *StackFlags) Add(fl *pflag.FlagSet) {
	fl.StringVarP(&f.File, "yaml", "f", "", "stack file or http(s) URL (default ./stack.yaml, else ./stack.yml)")
	fl.StringVar(&f.Filter, "filter", "", "only the stack functions whose name matches (* is a wildcard)")
	fl.StringVar(&f.Regex, "regex", "", "only the stack functions whose name matches this regular expression (unanchored)")
	fl.StringVar(&f.Tag, "tag", "latest", "image tag format: latest, sha, branch, describe or digest (as faas-cli)")
	fl.BoolVar(&f.Envsubst, "envsubst", true, "substitute ${VAR} in the stack file from the environment")
}

// Selection is the stack selection the flags name.
func (f StackFlags) Selection() Selection {
	return Selection(f)
}

// RegistryFlags are the flags of every command that talks to registries:
// build, push, up, dev, deploy and run.
type RegistryFlags struct {
	Timeout time.Duration
	// Insecure names registry hosts spoken to over plain HTTP.
	Insecure []string
}

// Add adds the flags to fl.
func (f *RegistryFlags) Add(fl *pflag.FlagSet) {
	fl.DurationVar(&f.Timeout, "registry-timeout", publish.DefaultTimeout, "fail when a registry sends nothing for this long (connecting, answering, or in a transfer); large blobs take as long as they need")
}

// Option is the project option of the flags.
func (f RegistryFlags) Option() Option { return WithRegistryTimeout(f.Timeout) }

// BuildFlags are the flags that shape a build, shared by build, up and dev.
type BuildFlags struct {
	Registry                RegistryFlags
	Platform                string
	BuildArgs               []string
	BuildOptions, CopyExtra []string
	BuildLabels             []string
	CacheRepo               string
	Parallel                int
	Native, NoCache, Quiet  bool
	Shrinkwrap              bool
	UseTemplate             bool
	NoWatchdogSubstitute    bool
	RegistryMirrors         []string
	// Accepted for faas-cli's scripts; nothing in kiln needs them.
	squash, pull, disableStackPull bool
}

// Add adds the flags to fl.
func (f *BuildFlags) Add(fl *pflag.FlagSet) {
	f.Registry.Add(fl)
	fl.StringVar(&f.Platform, "platform", "linux/"+runtime.GOARCH, "platform to build for, OS/ARCH[/VARIANT]")
	fl.StringArrayVarP(&f.BuildArgs, "build-arg", "b", nil, "build argument KEY=VALUE (e.g. GOFLAGS=-mod=vendor), over the stack's build_args; repeatable")
	fl.StringArrayVarP(&f.BuildOptions, "build-option", "o", nil, "build option of ./template/<lang>/template.yml whose Debian packages join the runtime base; repeatable")
	fl.StringArrayVar(&f.CopyExtra, "copy-extra", nil, "project path copied into every function's build, as configuration.copy; repeatable")
	fl.StringArrayVar(&f.BuildLabels, "build-label", nil, "image label KEY=VALUE; repeatable")
	fl.StringVar(&f.CacheRepo, "cache-repo", "", "registry repository `REPO` (e.g. registry.example.com/team/cache) that step layers are read from and pushed to, so other machines and fresh caches reuse them")
	fl.IntVar(&f.Parallel, "parallel", 1, "build this many stack functions at once")
	fl.BoolVar(&f.Native, "native", false, "compile Java functions with GraalVM's native-image (same as --build-arg NATIVE=true)")
	fl.BoolVar(&f.NoCache, "no-cache", false, "rebuild every layer instead of taking it from kiln's cache")
	fl.BoolVar(&f.Quiet, "quiet", false, "print no build progress, only the results")
	fl.BoolVar(&f.UseTemplate, "use-template", false, "build through ./template/<lang>/Dockerfile, as faas-cli does, even a lang kiln has a pack for")
	fl.BoolVar(&f.NoWatchdogSubstitute, "no-watchdog-substitute", false, "pull OpenFaaS's of-watchdog and classic-watchdog images where Dockerfiles name them, instead of kiln's own watchdog")
	fl.StringArrayVar(&f.RegistryMirrors, "registry-mirror", nil, "registry HOST[:PORT][/PATH] tried before Docker Hub for the images Dockerfiles' FROM names there; repeatable")
	fl.BoolVar(&f.Shrinkwrap, "shrinkwrap", false, "faas-cli's Docker build context; kiln has none (use --output oci:DIR for the image)")
	fl.BoolVar(&f.squash, "squash", false, "accepted for faas-cli; no effect: kiln keeps layers apart so an edit uploads one")
	fl.BoolVar(&f.pull, "pull", false, "accepted for faas-cli; no effect: kiln's bases are pinned by digest in its lock")
	fl.BoolVar(&f.disableStackPull, "disable-stack-pull", false, "accepted for faas-cli; no effect: kiln pulls no templates")
}

// Options are the project options of the flags: labels, --no-cache and
// --cache-repo.
func (f BuildFlags) Options() ([]Option, error) {
	if f.Parallel < 1 {
		return nil, usage.Errorf("--parallel %d: want 1 or more", f.Parallel)
	}
	labels, err := ParseKeyValues("--build-label", f.BuildLabels)
	if err != nil {
		return nil, err
	}
	opts := []Option{WithLabels(labels), WithNoCache(f.NoCache), WithTemplates(f.UseTemplate), WithRealWatchdog(f.NoWatchdogSubstitute), WithRegistryMirrors(f.RegistryMirrors), f.Registry.Option()}
	if f.CacheRepo != "" {
		repo, err := ParseRepository("--cache-repo", f.CacheRepo, f.Registry.Insecure)
		if err != nil {
			return nil, err
		}
		opts = append(opts, WithCacheRepo(repo))
	}
	return opts, nil
}

// Settings checks the flags and turns them into build settings; getenv
// gives SOURCE_DATE_EPOCH.
func (f BuildFlags) Settings(getenv func(string) string) (BuildSettings, error) {
	platform, err := ParsePlatform("--platform", f.Platform)
	if err != nil {
		return BuildSettings{}, err
	}
	epoch, err := SourceDateEpoch(getenv)
	if err != nil {
		return BuildSettings{}, err
	}
	if f.Shrinkwrap {
		return BuildSettings{}, usage.Errorf("--shrinkwrap: kiln builds without a Docker build context; use --output oci:DIR or tar:FILE to keep the image")
	}
	args, err := ParseBuildArgs(f.BuildArgs)
	if err != nil {
		return BuildSettings{}, err
	}
	cwd, err := os.Getwd()
	if err != nil {
		return BuildSettings{}, err
	}
	for _, c := range f.CopyExtra {
		if _, err := stack.CopyPath(cwd, c); err != nil {
			return BuildSettings{}, usage.Errorf("--copy-extra %q: %w", c, err)
		}
	}
	if f.Native {
		if v, ok := args["NATIVE"]; ok && v != "true" {
			return BuildSettings{}, usage.Errorf("--native and --build-arg NATIVE=%s disagree", v)
		}
		args["NATIVE"] = "true"
	}
	return BuildSettings{Platform: *platform, Epoch: epoch, BuildArgs: args, BuildOptions: f.BuildOptions, CopyExtra: f.CopyExtra, Insecure: f.Registry.Insecure}, nil
}

// DeployFlags are faas-cli's deploy flags, shared by deploy, up and dev.
type DeployFlags struct {
	Gateway, Token, Namespace, FProcess string
	Env, Labels, Annotations            []string
	Secrets, Constraints                []string
	ReadOnly, TLSNoVerify               bool
	Timeout                             time.Duration
	Update, Replace, ReadTemplate       bool
	Network                             string
}

// Add adds the flags to fl.
func (f *DeployFlags) Add(fl *pflag.FlagSet) {
	fl.StringVarP(&f.Gateway, "gateway", "g", deploy.DefaultGateway, "gateway URL (else the stack's provider.gateway, else $OPENFAAS_URL)")
	fl.StringVarP(&f.Token, "token", "k", "", "bearer token for the gateway (a basic login in faas-cli's config.yml wins)")
	fl.StringVarP(&f.Namespace, "namespace", "n", "", "namespace to deploy to (over the stack's namespace)")
	fl.StringVar(&f.FProcess, "fprocess", "", "accepted for faas-cli; ignored, as faas-cli ignores it with a stack file: set fprocess in the stack file")
	fl.StringArrayVarP(&f.Env, "env", "e", nil, "environment variable KEY=VALUE, over environment and environment_file; repeatable")
	fl.StringArrayVarP(&f.Labels, "label", "l", nil, "label KEY=VALUE, over the stack's labels; repeatable")
	fl.StringArrayVar(&f.Annotations, "annotation", nil, "annotation KEY=VALUE, over the stack's annotations; repeatable")
	fl.StringArrayVar(&f.Secrets, "secret", nil, "secret the function may read; repeatable")
	fl.StringArrayVar(&f.Constraints, "constraint", nil, "placement constraint, for functions with no constraints key; repeatable")
	fl.BoolVar(&f.ReadOnly, "readonly", false, "make every function's root filesystem read-only")
	fl.BoolVar(&f.TLSNoVerify, "tls-no-verify", false, "skip the gateway's TLS certificate check")
	fl.DurationVar(&f.Timeout, "timeout", 60*time.Second, "timeout of each gateway request")
	fl.BoolVar(&f.Update, "update", true, "update a deployed function with PUT, creating it on 404; false: create with POST only")
	fl.BoolVar(&f.Replace, "replace", false, "delete the function, then create it (needs --update=false, as in faas-cli)")
	fl.BoolVar(&f.ReadTemplate, "read-template", true, "read fprocess from ./template/<lang>/template.yml when the stack and the image set none")
	fl.StringVar(&f.Network, "network", "", "network sent in the deploy request (deprecated: providers ignore it)")
}

// Settings checks the flags and turns them into deploy settings.
func (f DeployFlags) Settings() (DeploySettings, error) {
	ds := DeploySettings{Gateway: f.Gateway, Token: f.Token, Namespace: f.Namespace, Secrets: f.Secrets, Constraints: f.Constraints, ReadOnly: f.ReadOnly, TLSNoVerify: f.TLSNoVerify, Timeout: f.Timeout, ReadTemplate: f.ReadTemplate, Network: f.Network}
	switch {
	case f.Update && f.Replace:
		return ds, usage.Wrap(errors.New("--replace and --update: one of them must be false (--replace --update=false)"))
	case f.Replace:
		ds.Mode = deploy.Replace
	case f.Update:
		ds.Mode = deploy.Update
	default:
		ds.Mode = deploy.Create
	}
	var err error
	if ds.Env, err = ParseKeyValues("--env", f.Env); err != nil {
		return ds, err
	}
	if ds.Labels, err = ParseKeyValues("--label", f.Labels); err != nil {
		return ds, err
	}
	ds.Annotations, err = ParseKeyValues("--annotation", f.Annotations)
	return ds, err
}

// Warnings are the flags given that have no effect: --fprocess, which
// faas-cli reads only when it deploys without a stack file, and kiln
// always deploys a stack file's functions.
func (f DeployFlags) Warnings() []Warning {
	if f.FProcess == "" {
		return nil
	}
	return []Warning{{Msg: fmt.Sprintf("--fprocess %q is ignored with a stack file, as by faas-cli: set fprocess in the stack file", f.FProcess)}}
}

// LocalFlags are the local gateway's flags, shared by up and dev.
type LocalFlags struct {
	Local        bool
	Port         int
	SecretsDir   string
	PasswordFile string
	NoAuth       bool
	AllowedHosts []string
}

// Add adds the flags to fl.
func (f *LocalFlags) Add(fl *pflag.FlagSet) {
	fl.BoolVar(&f.Local, "local", false, "run the functions on a local gateway instead of deploying them")
	fl.IntVarP(&f.Port, "port", "p", 8080, "port of the local gateway (with --local)")
	fl.StringVar(&f.SecretsDir, "secrets-dir", "", "folder of the local gateway's secrets, a file per name, which faas-cli secret create fills (default: secrets in kiln's cache)")
	fl.StringVar(&f.PasswordFile, "basic-auth-password-file", "", "file holding the password of the local gateway's user admin (default: one generated once and kept in kiln's config folder)")
	fl.BoolVar(&f.NoAuth, "no-auth", false, "let the local gateway's /system API and UI go without a login")
	fl.StringArrayVar(&f.AllowedHosts, "allowed-host", nil, "NAME or NAME:PORT the local gateway answers to besides 127.0.0.1, localhost and [::1]; repeatable")
}

// Check refuses a port out of range when the gateway is local, and
// --no-auth with a password.
func (f LocalFlags) Check() error {
	if !f.Local {
		return nil
	}
	if f.NoAuth && f.PasswordFile != "" {
		return usage.Errorf("--no-auth and --basic-auth-password-file: give one of them")
	}
	return CheckPort(f.Port)
}

// Settings are the local gateway's settings the flags give.
func (f LocalFlags) Settings() LocalSettings {
	return LocalSettings{Port: f.Port, SecretsDir: f.SecretsDir, PasswordFile: f.PasswordFile, NoAuth: f.NoAuth, AllowedHosts: f.AllowedHosts}
}

// CheckPort refuses a --port out of range.
func CheckPort(port int) error {
	if port <= 0 || port > 65535 {
		return usage.Errorf("--port %d: want 1-65535", port)
	}
	return nil
}

// ParseBuildArgs reads -b flags as faas-cli does: neither side may be
// empty, and several ADDITIONAL_PACKAGE flags are space-joined.
func ParseBuildArgs(kvs []string) (map[string]string, error) {
	out := map[string]string{}
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" || v == "" {
			return nil, usage.Errorf("--build-arg %q: want KEY=VALUE, neither empty", kv)
		}
		if prev := out[k]; k == "ADDITIONAL_PACKAGE" && prev != "" {
			v = prev + " " + v
		}
		out[k] = v
	}
	return out, nil
}

// ParseKeyValues reads repeated KEY=VALUE flags; the key may not be empty.
func ParseKeyValues(flag string, kvs []string) (map[string]string, error) {
	out := map[string]string{}
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, usage.Errorf("%s %q: want KEY=VALUE", flag, kv)
		}
		out[k] = v
	}
	return out, nil
}

// SourceDateEpoch reads SOURCE_DATE_EPOCH, the reproducible-builds
// convention for the timestamp in every layer; unset means 0.
func SourceDateEpoch(getenv func(string) string) (time.Time, error) {
	s := getenv("SOURCE_DATE_EPOCH")
	if s == "" {
		return time.Unix(0, 0).UTC(), nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH %q: want seconds since 1970", s)
	}
	return time.Unix(n, 0).UTC(), nil
}

// UpFlags are the flags of up and dev: a stack build, then a deploy.
type UpFlags struct {
	Stack  StackFlags
	Build  BuildFlags
	Deploy DeployFlags
	Local  LocalFlags
}

// Add adds the flags to fl.
func (f *UpFlags) Add(fl *pflag.FlagSet) {
	f.Stack.Add(fl)
	f.Build.Add(fl)
	f.Deploy.Add(fl)
	f.Local.Add(fl)
}

// Up is a stack ready to be built and deployed, as up and dev start.
type Up struct {
	Project  *Project
	Stack    *Stack
	Settings BuildSettings
	Deploy   DeploySettings
	// Output is the local image store, or the registry.
	Output Output
}

// Open checks the flags, reads the stack file and opens the project in
// cacheDir with opts; local builds go to the local image store, the others
// are pushed.
func (f UpFlags) Open(ctx context.Context, cacheDir string, getenv func(string) string, local bool, opts ...Option) (*Up, error) {
	popts, err := f.Build.Options()
	if err != nil {
		return nil, err
	}
	if err := f.Local.Check(); err != nil {
		return nil, err
	}
	ds, err := f.Deploy.Settings()
	if err != nil {
		return nil, err
	}
	settings, err := f.Build.Settings(getenv)
	if err != nil {
		return nil, err
	}
	p, err := New(cacheDir, append(append(opts, WithGetenv(getenv)), popts...)...)
	if err != nil {
		return nil, err
	}
	st, err := p.LoadStack(ctx, f.Stack.Selection())
	if err != nil {
		return nil, err
	}
	for _, w := range f.Deploy.Warnings() {
		p.emit(w)
	}
	out := p.Registry()
	if local {
		out = p.LocalStore()
	}
	return &Up{Project: p, Stack: st, Settings: settings, Deploy: ds, Output: out}, nil
}

// Build builds the stack's selected functions into the output.
func (u *Up) Build(ctx context.Context, parallel int) (*StackBuild, error) {
	return u.Project.BuildStack(ctx, u.Stack, u.Settings, u.Output, parallel)
}
