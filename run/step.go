package run

import (
	"fmt"
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
	// MountSecret binds Source, a host file, read-only at
	// /run/secrets/<ID> or Target.
	MountSecret MountType = "secret"
	// MountCache binds a directory of kiln's cache (kind
	// cache.MountCaches), kept between steps and builds, keyed by ID or
	// else Target.
	MountCache MountType = "cache"
	// MountBind binds Source, a host file or directory (the build
	// context), read-only unless ReadWrite; writes land on the host. With
	// From, it binds Source of the tree From's layers make instead
	// (BuildKit's from=), where writes, if ReadWrite, are discarded.
	MountBind MountType = "bind"
	// MountSSH binds Source, the host's SSH agent socket
	// (SSH_AUTH_SOCK), at /run/buildkit/ssh_agent.<n> or Target and sets
	// SSH_AUTH_SOCK to it.
	MountSSH MountType = "ssh"
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
}

// sshAgentDir is where BuildKit puts SSH agent sockets.
const sshAgentDir = "/run/buildkit"

// resolve returns m as a Mount, its target defaulted as BuildKit does;
// cacheDir is the directory of a cache mount, found by the caller. n counts
// the ssh mounts before this one.
func (m StepMount) resolve(cacheDir string, n int) (Mount, error) {
	target := m.Target
	out := Mount{ReadOnly: true}
	switch m.Type {
	case MountSecret:
		if target == "" {
			if m.ID == "" {
				return out, fmt.Errorf("secret mount: want an id or a target")
			}
			target = "/run/secrets/" + m.ID
		}
		out.Source = m.Source
	case MountSSH:
		if target == "" {
			target = fmt.Sprintf("%s/ssh_agent.%d", sshAgentDir, n)
		}
		out.Source = m.Source
	case MountBind:
		out.Source, out.ReadOnly = m.Source, !m.ReadWrite
	case MountCache:
		out.Source, out.ReadOnly = cacheDir, false
	default:
		return out, fmt.Errorf("mount type %q: want secret, cache, bind or ssh", m.Type)
	}
	if target == "" || !path.IsAbs(target) {
		return out, fmt.Errorf("%s mount: target %q must be an absolute path", m.Type, target)
	}
	if m.Type != MountCache && (out.Source == "" || !filepath.IsAbs(out.Source)) {
		return out, fmt.Errorf("%s mount %s: source %q must be an absolute host path", m.Type, target, out.Source)
	}
	out.Target = path.Clean(target)
	return out, nil
}

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
