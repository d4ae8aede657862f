package run

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"time"
)

// hostName is what a name in /etc/hosts may be.
var hostName = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$`)

// InitArg is the first argument that makes a program act as the container
// init: Image starts the running executable again with it, and that
// program's main must then call InitMain before doing anything else:
//
//	if len(os.Args) > 1 && os.Args[1] == run.InitArg {
//		run.InitMain()
//	}
const InitArg = "__kiln-run-init"

// DefaultGracePeriod is how long Image waits after SIGTERM before SIGKILL.
const DefaultGracePeriod = 10 * time.Second

// Option configures Image.
type Option func(*options)

type options struct {
	cacheDir string
	publish  []published
	aliases  []string
	env      []string
	stdout   io.Writer
	stderr   io.Writer
	grace    time.Duration
	mounts   []Mount
	readOnly bool
	// userNS: run in a user namespace that maps the caller alone. Needed
	// without root; tests set it as root too, to cover that path.
	userNS bool
	// shift: root runs in a user namespace of its own (see idRange), as
	// root does unless userNS is set; tests turn it off to cover the runs
	// on a cache without idmapped mounts.
	shift   bool
	noShift bool
	started func(pid int)
}

// WithCacheDir sets kiln's cache directory, which holds the unpacked root
// filesystems (cache.RootfsLayers and cache.Rootfs entries, held while the
// image runs, so that no prune removes them) and the run's scratch space
// (its temporary folder). Required.
func WithCacheDir(dir string) Option {
	return func(o *options) { o.cacheDir = dir }
}

// HostAliases are the names under which a run reaches the host's loopback
// services (a local database, the local gateway): kiln's own, then the ones
// Docker Desktop and Podman give, which functions already use.
var HostAliases = []string{"host.kiln.internal", "host.docker.internal", "host.containers.internal"}

// published is a container port served on a host listener.
type published struct {
	listener *net.TCPListener
	port     int
}

// WithPublish serves port of the container's loopback on l, a listener on
// the host that the caller opened (so a port already taken fails there, and
// the caller knows the address): each connection l accepts is joined to
// one made to port inside. l stays the caller's: it is not closed, and may
// serve one run after another. Default: nothing is published, the run's
// ports are its own.
func WithPublish(l *net.TCPListener, port int) Option {
	return func(o *options) { o.publish = append(o.publish, published{l, port}) }
}

// WithHostNames adds names that, inside, lead to the host's loopback, as
// HostAliases do (for the local gateway: gateway, gateway.openfaas).
// Without network (see ErrNoNetwork) they are not written. Default: none.
func WithHostNames(names ...string) Option {
	return func(o *options) { o.aliases = append(o.aliases, names...) }
}

// WithEnv adds KEY=VALUE environment variables; they win over the image's.
// Default: none.
func WithEnv(env []string) Option {
	return func(o *options) { o.env = append(o.env, env...) }
}

// WithStdout sets where the entrypoint's standard output goes.
// Default: discarded.
func WithStdout(w io.Writer) Option {
	return func(o *options) { o.stdout = w }
}

// WithStderr sets where the entrypoint's standard error goes.
// Default: discarded.
func WithStderr(w io.Writer) Option {
	return func(o *options) { o.stderr = w }
}

// WithGracePeriod sets how long a cancelled run may take to exit after
// SIGTERM before it is killed. Default: DefaultGracePeriod.
func WithGracePeriod(d time.Duration) Option {
	return func(o *options) { o.grace = d }
}

// Mount binds a host file or directory into the container.
type Mount struct {
	// Source is the host path, a file or a directory.
	Source string `json:"source"`
	// Target is the absolute path in the container. It is resolved inside
	// the image, whose symlinks cannot lead it out, and created (with its
	// parents) in the run's writable layer when the image lacks it.
	Target string `json:"target"`
	// ReadOnly makes the mount read-only in the container.
	ReadOnly bool `json:"readOnly,omitempty"`
}

// WithMounts adds host files and directories to bind into the container, in
// order, after /proc and /dev, so a later mount may cover an earlier one.
// Default: none.
func WithMounts(mounts []Mount) Option {
	return func(o *options) { o.mounts = append(o.mounts, mounts...) }
}

// WithReadOnlyRoot makes the image's root filesystem read-only, with an
// empty tmpfs on /tmp, as OpenFaaS's readOnlyRootFilesystem does. Default:
// writable, the changes dropped after the run.
func WithReadOnlyRoot() Option {
	return func(o *options) { o.readOnly = true }
}

// WithStarted sets a function that Image calls with the pid of the run's
// init, its first process, once it runs: the caller may watch that
// process tree (its memory, its CPU) until Image returns. Default: none.
func WithStarted(f func(pid int)) Option {
	return func(o *options) { o.started = f }
}

func newOptions(opts []Option) (*options, error) {
	o := &options{grace: DefaultGracePeriod}
	for _, opt := range opts {
		opt(o)
	}
	switch {
	case o.cacheDir == "":
		return nil, errors.New("no cache directory: WithCacheDir is required")
	case o.grace <= 0:
		return nil, fmt.Errorf("grace period %s: must be positive", o.grace)
	}
	for _, p := range o.publish {
		if p.listener == nil || p.port < 1 || p.port > 65535 {
			return nil, fmt.Errorf("publishing port %d: want a listener and a port in 1-65535", p.port)
		}
	}
	for _, name := range o.aliases {
		if !hostName.MatchString(name) {
			return nil, fmt.Errorf("host name %q: want letters, digits, '-' and '.'", name)
		}
	}
	for i, m := range o.mounts {
		switch {
		case !filepath.IsAbs(m.Source):
			return nil, fmt.Errorf("mount %q: source must be an absolute path", m.Source)
		case !path.IsAbs(m.Target):
			return nil, fmt.Errorf("mount %s: target %q must be an absolute path", m.Source, m.Target)
		case path.Clean(m.Target) == "/":
			return nil, fmt.Errorf("mount %s: target / would hide the image", m.Source)
		}
		o.mounts[i].Source = filepath.Clean(m.Source)
	}
	o.userNS = o.userNS || os.Geteuid() != 0
	o.shift = !o.userNS && !o.noShift
	return o, nil
}

// ExitError reports that the entrypoint exited with a non-zero status.
type ExitError struct {
	// Code is the exit status, or 128+N when signal N ended the
	// entrypoint, as a shell reports it.
	Code int
}

func (e *ExitError) Error() string {
	return fmt.Sprintf("entrypoint exited with status %d", e.Code)
}

// ExitCode returns Code, so the CLI can exit with the function's status.
func (e *ExitError) ExitCode() int { return e.Code }
