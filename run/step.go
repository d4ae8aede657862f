package run

import (
	"fmt"
	"io/fs"
	"path"
	"path/filepath"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// StepSpec is one Dockerfile RUN: what Step runs on the stage's layers.
type StepSpec struct {
	// Args is the command in exec form; the caller turns a shell form
	// into [shell..., command].
	Args []string
	// Env holds the stage's KEY=VALUE variables; PATH, HOSTNAME and HOME
	// get Docker's defaults unless Env sets them.
	Env []string
	// User is "", "uid", "uid:gid", "name" or "name:group", looked up in
	// the stage's own /etc/passwd and /etc/group. Default: root.
	User string
	// Workdir is the working directory, created if missing. Default: /.
	Workdir string
	// NoNetwork gives the command its loopback alone (RUN
	// --network=none). Default: outbound network, as Docker's default.
	NoNetwork bool
	// Mounts are the RUN's --mount flags; none of them leaves a trace in
	// the layer.
	Mounts []StepMount
	// Epoch clamps the layer's modification times (SOURCE_DATE_EPOCH), so
	// a deterministic command gives one digest everywhere. Zero means
	// the Unix epoch.
	Epoch time.Time
}

// MountType is the type of a RUN --mount.
type MountType string

// The mount types of RUN --mount.
const (
	// MountSecret puts the content of Source, a host file, read-only at
	// /run/secrets/<ID> or Target, owned by UID:GID with Mode (default
	// 0400), on a tmpfs: never on disk in the container.
	MountSecret MountType = "secret"
	// MountCache binds a directory of kiln's cache (kind
	// cache.MountCaches), kept between steps and builds, keyed by ID or
	// else Target; UID, GID and Mode (default 0755) apply when it is
	// empty, as when it is new.
	MountCache MountType = "cache"
	// MountBind binds Source, a host file or directory (the build
	// context), read-only unless ReadWrite; writes land on the host. With
	// From, it binds Source of the tree From's layers make instead
	// (BuildKit's from=), where writes, if ReadWrite, are discarded.
	MountBind MountType = "bind"
	// MountSSH binds Source, the host's SSH agent socket
	// (SSH_AUTH_SOCK), at /run/buildkit/ssh_agent.<n> or Target; the
	// first sets SSH_AUTH_SOCK.
	MountSSH MountType = "ssh"
	// MountTmpfs puts an empty tmpfs at Target.
	MountTmpfs MountType = "tmpfs"
)

// StepMount is one RUN --mount.
type StepMount struct {
	Type MountType
	// ID names a secret or a cache (see the types).
	ID string
	// Source is the host path, for secret, bind and ssh mounts; for a
	// bind mount with From, the path in From's tree (default /).
	Source string
	// From are the layers, bottom first, of the stage or image a bind
	// mount shows.
	From []v1.Layer
	// Target is the path in the container.
	Target string
	// ReadWrite makes a bind mount writable; cache mounts always are.
	ReadWrite bool
	// UID, GID and Mode own secrets and new cache directories, in the
	// container's ids; Mode 0 is the type's default.
	UID, GID int
	Mode     fs.FileMode
	// Sharing is a cache mount's sharing mode, as BuildKit has them, kept
	// across kiln processes too: SharingShared (also ""), SharingLocked
	// or SharingPrivate.
	Sharing string
}

// The sharing modes of cache mounts.
const (
	// SharingShared: any number of steps use the cache at once.
	SharingShared = "shared"
	// SharingLocked: one step at a time; the others wait.
	SharingLocked = "locked"
	// SharingPrivate: a step whose cache another step is using gets an
	// empty one of its own instead, gone after the step.
	SharingPrivate = "private"
)

// sshAgentDir is where BuildKit puts SSH agent sockets.
const sshAgentDir = "/run/buildkit"

// target returns m's target, defaulted as BuildKit does; n counts the ssh
// mounts before this one.
func (m StepMount) target(n int) (string, error) {
	t := m.Target
	switch {
	case t != "":
	case m.Type == MountSecret && m.ID != "":
		t = "/run/secrets/" + m.ID
	case m.Type == MountSSH:
		t = fmt.Sprintf("%s/ssh_agent.%d", sshAgentDir, n)
	}
	if !path.IsAbs(t) {
		return "", fmt.Errorf("%s mount: target %q must be an absolute path", m.Type, t)
	}
	if path.Clean(t) == "/" {
		return "", fmt.Errorf("%s mount: target / would hide the stage", m.Type)
	}
	needsSource := m.Type == MountSecret || m.Type == MountSSH || m.Type == MountBind && len(m.From) == 0
	if needsSource && !filepath.IsAbs(m.Source) {
		return "", fmt.Errorf("%s mount %s: source %q must be an absolute host path", m.Type, t, m.Source)
	}
	return path.Clean(t), nil
}

// SandboxDeniedError reports that this process may not make a step's
// sandbox: the kernel refused a namespace or a mount (EPERM, EACCES), as
// in a container without CAP_SYS_ADMIN, or kiln runs without root and
// without subordinate ids. The step's command never ran.
type SandboxDeniedError struct {
	Err error
}

func (e *SandboxDeniedError) Error() string { return e.Err.Error() }

func (e *SandboxDeniedError) Unwrap() error { return e.Err }

// StepExitError reports that a step's command exited with a non-zero
// status.
type StepExitError struct {
	Args []string
	// Code is the exit status, or 128+N when signal N ended the command.
	Code int
}

func (e *StepExitError) Error() string {
	return fmt.Sprintf("step %s: exit code %d", commandLine(e.Args), e.Code)
}

// ExitCode returns Code.
func (e *StepExitError) ExitCode() int { return e.Code }

// commandLine shows args as the error messages quote a step.
func commandLine(args []string) string {
	return fmt.Sprintf("%q", strings.Join(args, " "))
}
