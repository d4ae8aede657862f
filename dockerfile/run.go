package dockerfile

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"

	"github.com/kiln-build/kiln/layers"
)

// RunSpec is one RUN command, with everything the stage gives it.
type RunSpec struct {
	// Args is the command, the stage's SHELL already prepended to a
	// shell-form command.
	Args []string `json:"args,omitempty"`
	// Env is the stage's environment: its ENV and its ARGs.
	Env []string `json:"env,omitempty"`
	// User is USER as written ("app", "1000:1000"); "" is root.
	User string `json:"user,omitempty"`
	// Workdir is the absolute working directory; the runner creates it if
	// missing.
	Workdir string `json:"workdir,omitempty"`
	// Mounts are RUN --mount flags, resolved.
	Mounts []Mount `json:"mounts,omitempty"`
	// Network is RUN --network: "" (the default network), "none" or
	// "host".
	Network string `json:"network,omitempty"`
	// Platform is the stage's platform: a runner that cannot run its
	// binaries returns an error.
	Platform v1.Platform `json:"platform"`
}

// MountType is what a RUN --mount mounts.
type MountType string

// The mount types of RUN --mount.
const (
	// MountBind mounts Source, a host path the engine prepared (a part of
	// the build context or of another stage, or an inline script).
	MountBind MountType = "bind"
	// MountCache mounts a directory kept between builds, named by ID.
	MountCache MountType = "cache"
	// MountTmpfs mounts an empty tmpfs.
	MountTmpfs MountType = "tmpfs"
	// MountSecret mounts the secret ID as a file (or sets it as the
	// variable Env). Its value never reaches the engine or a layer.
	MountSecret MountType = "secret"
	// MountSSH forwards the SSH agent socket ID.
	MountSSH MountType = "ssh"
)

// Mount is one RUN --mount.
type Mount struct {
	Type MountType `json:"type,omitempty"`
	// Target is the absolute path inside the command's filesystem.
	Target string `json:"target,omitempty"`
	// Source is a bind mount's host path.
	Source string `json:"source,omitempty"`
	// ID names a cache, a secret or an SSH socket. A cache's ID is its
	// target when the Dockerfile names none.
	ID string `json:"id,omitempty"`
	// Sharing is a cache's sharing mode: shared (default), private or
	// locked.
	Sharing string `json:"sharing,omitempty"`
	// ReadOnly is false for bind mounts with rw (the writes are then
	// dropped) and for caches and tmpfs unless ro.
	ReadOnly bool `json:"readonly,omitempty"`
	// Required fails the RUN when a secret or SSH socket is missing.
	Required bool `json:"required,omitempty"`
	// Env is the variable a secret is given as, instead of a file.
	Env string `json:"env,omitempty"`
	// Mode, UID and GID, when set, own a cache's root or a secret's file.
	Mode *fs.FileMode `json:"mode,omitempty"`
	UID  *int         `json:"uid,omitempty"`
	GID  *int         `json:"gid,omitempty"`
	// Size limits a tmpfs, in bytes; 0 is no limit.
	Size int64 `json:"size,omitempty"`
}

// run runs a RUN through the runner, unless its layer is in the cache.
func (st *stage) run(ctx context.Context, c *instructions.RunCommand) error {
	if len(c.FlagsUsed) > 0 {
		for _, f := range c.FlagsUsed {
			if f != "mount" && f != "network" {
				return fmt.Errorf("RUN --%s is not supported by kiln", f)
			}
		}
	}
	spec := RunSpec{
		Env:      slices.Clone(st.env),
		User:     st.cfg.Config.User,
		Workdir:  st.workdirPath("."),
		Network:  instructions.GetNetwork(c),
		Platform: st.platform,
	}
	if spec.Network == instructions.NetworkDefault {
		spec.Network = ""
	}
	args, script, err := st.runArgs(c)
	if err != nil {
		return err
	}
	spec.Args = args
	k := st.stepKey("run")
	if script != nil {
		if err := k.String("script").File(script.Source); err != nil {
			return err
		}
		spec.Mounts = append(spec.Mounts, *script)
	}
	for _, m := range instructions.GetMounts(c) {
		mount, err := st.mount(ctx, m, k)
		if err != nil {
			return err
		}
		spec.Mounts = append(spec.Mounts, mount)
	}
	createdBy := "RUN " + runHistory(args, st.args, st.env) + " # buildkit"
	k.Strings(spec.Args...).Strings(spec.Env...).String(spec.User).String(spec.Workdir).String(spec.Network).String(formatPlatform(spec.Platform))
	for _, m := range spec.Mounts {
		k.Strings(string(m.Type), m.Target, m.ID, m.Sharing, strconv.FormatBool(m.ReadOnly), strconv.FormatBool(m.Required), m.Env)
		k.String(fmt.Sprint(deref(m.Mode), deref(m.UID), deref(m.GID), m.Size))
	}
	name := "RUN " + strings.Join(c.CmdLine, " ")
	return st.layerStep(ctx, k.Sum(), name, createdBy, built(func(ctx context.Context, w io.Writer) error {
		if st.b.opts.Runner == nil {
			return errors.New("RUN needs a runner, and none was given")
		}
		// Proxy settings reach the command without being in its key
		// or its history, as BuildKit passes them.
		run := spec
		run.Env = append(slices.Clone(spec.Env), st.b.proxyEnv()...)
		l, err := st.b.opts.Runner.Run(ctx, st.layers, run)
		if err != nil {
			return err
		}
		rc, err := l.Uncompressed()
		if err != nil {
			return err
		}
		defer rc.Close()
		return normaliseTar(rc, w, st.b.opts.Epoch)
	}))
}

// proxyArgs are the build args BuildKit gives every RUN undeclared.
var proxyArgs = []string{"HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "FTP_PROXY", "ftp_proxy", "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"}

func (b *build) proxyEnv() []string {
	var env []string
	for _, k := range proxyArgs {
		if v, ok := b.opts.BuildArgs[k]; ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}

func deref[T any](p *T) any {
	if p == nil {
		return nil
	}
	return *p
}

// runArgs returns the command line of a RUN. A heredoc that starts with
// #! becomes a script the command runs, bind-mounted at
// /dev/pipes/<name>, as BuildKit does.
func (st *stage) runArgs(c *instructions.RunCommand) ([]string, *Mount, error) {
	args := c.CmdLine
	var script *Mount
	if len(c.Files) > 0 {
		if len(args) != 1 || !c.PrependShell {
			return nil, nil, fmt.Errorf("RUN with a heredoc must be in shell form")
		}
		if hd := parser.MustParseHeredoc(args[0]); hd != nil {
			data := c.Files[0].Data
			if c.Files[0].Chomp {
				data = parser.ChompHeredocContent(data)
			}
			if strings.HasPrefix(data, "#!") {
				f, err := os.CreateTemp(st.b.scratch, "script-")
				if err != nil {
					return nil, nil, err
				}
				f.Close()
				if err := os.WriteFile(f.Name(), []byte(data), 0o755); err != nil {
					return nil, nil, err
				}
				target := path.Join("/dev/pipes", c.Files[0].Name)
				script = &Mount{Type: MountBind, Target: target, Source: f.Name(), ReadOnly: true}
				return []string{target}, script, nil
			}
			args = []string{data}
		} else {
			var b strings.Builder
			b.WriteString(args[0])
			for _, f := range c.Files {
				b.WriteString("\n" + f.Data + f.Name)
			}
			args = []string{b.String()}
		}
	}
	if c.PrependShell {
		args = append(st.shell(), strings.Join(args, " "))
	}
	return args, script, nil
}

// runHistory is RUN's created_by as BuildKit writes it: the stage's ARGs
// first ("|2 A=1 B=2"), then the command.
func runHistory(args []string, declared []argValue, env []string) string {
	var build []string
	seen := map[string]int{}
	for _, a := range declared {
		v, ok := lookupEnv(env, a.key)
		if !ok && a.value != nil {
			v = *a.value
		}
		kv := a.key + "=" + v
		if i, ok := seen[a.key]; ok {
			build[i] = kv
			continue
		}
		seen[a.key] = len(build)
		build = append(build, kv)
	}
	if len(build) > 0 {
		build = append([]string{"|" + strconv.Itoa(len(build))}, build...)
	}
	return strings.Join(append(build, args...), " ")
}

// mount resolves one --mount, and adds what decides its content to the
// step's key: a bind's files, never a secret's value.
func (st *stage) mount(ctx context.Context, m *instructions.Mount, k *layers.Key) (Mount, error) {
	out := Mount{Type: MountType(m.Type), Target: m.Target, ReadOnly: m.ReadOnly, Required: m.Required, Size: m.SizeLimit}
	if m.Mode != nil {
		mode := fs.FileMode(*m.Mode)
		out.Mode = &mode
	}
	if m.UID != nil {
		uid := int(*m.UID)
		out.UID = &uid
	}
	if m.GID != nil {
		gid := int(*m.GID)
		out.GID = &gid
	}
	if out.Target != "" && !path.IsAbs(out.Target) {
		out.Target = st.workdirPath(out.Target)
	}
	switch out.Type {
	case MountSecret, MountSSH:
		out.ID = m.CacheID
		if m.Source != "" {
			out.ID = m.Source
		}
		if out.Type == MountSecret {
			if out.ID == "" {
				out.ID = path.Base(out.Target)
			}
			if m.Env != nil {
				out.Env = *m.Env
			}
			if out.Target == "" && out.Env == "" {
				out.Target = "/run/secrets/" + path.Base(out.ID)
			}
		} else if out.ID == "" {
			out.ID = "default"
		}
		return out, nil
	case MountCache:
		out.ID = m.CacheID
		if out.ID == "" {
			out.ID = path.Clean(out.Target)
		}
		out.Sharing = string(m.CacheSharing)
		if out.Sharing == "" {
			out.Sharing = string(instructions.MountSharingShared)
		}
		if m.From != "" {
			return out, fmt.Errorf("--mount=type=cache,from=%s is not supported by kiln", m.From)
		}
	case MountTmpfs:
	case MountBind:
		src, err := st.bindSource(ctx, m, k)
		if err != nil {
			return out, err
		}
		out.Source = src
	default:
		return out, fmt.Errorf("--mount=type=%s is not supported by kiln", m.Type)
	}
	if out.Target == "" || out.Target == "/" {
		return out, fmt.Errorf("--mount=type=%s needs a target other than /", m.Type)
	}
	return out, nil
}

// bindSource prepares a bind mount's source on the host: a part of the
// build context, or of another stage written out.
func (st *stage) bindSource(ctx context.Context, m *instructions.Mount, k *layers.Key) (string, error) {
	rel := cleanRel(m.Source)
	if m.From == "" {
		ss, err := st.b.contextSources(m.Source, nil)
		if err != nil {
			return "", fmt.Errorf("--mount=type=bind,source=%s: %w", m.Source, err)
		}
		for _, s := range ss {
			if err := k.Files(s.files); err != nil {
				return "", err
			}
		}
		return filepath.Join(st.b.opts.Context, filepath.FromSlash(rel)), nil
	}
	ls, diffIDs, err := st.fromLayers(ctx, m.From)
	if err != nil {
		return "", fmt.Errorf("--mount=type=bind,from=%s: %w", m.From, err)
	}
	fsys, err := st.readFS(ctx, m.From, ls, diffIDs, []string{m.Source})
	if err != nil {
		return "", fmt.Errorf("--mount=type=bind,from=%s: %w", m.From, err)
	}
	ss, err := fsSources(fsys, m.Source, nil)
	if err != nil {
		return "", fmt.Errorf("--mount=type=bind,from=%s,source=%s: %w", m.From, m.Source, err)
	}
	dir, err := os.MkdirTemp(st.b.scratch, "bind-")
	if err != nil {
		return "", err
	}
	for _, s := range ss {
		if err := k.Files(s.files); err != nil {
			return "", err
		}
		if !s.dir {
			f := s.files[0]
			return f.Source, nil
		}
		if err := writeTree(dir, s.files); err != nil {
			return "", err
		}
	}
	return dir, nil
}

// writeTree writes files under dir, for a bind mount.
func writeTree(dir string, files []layers.File) error {
	for _, f := range files {
		p := filepath.Join(dir, filepath.FromSlash(f.Path))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		var err error
		switch {
		case f.Mode.IsDir():
			err = os.MkdirAll(p, f.Mode.Perm()|0o700)
		case f.Mode&fs.ModeSymlink != 0:
			err = os.Symlink(f.Linkname, p)
		default:
			err = os.Link(f.Source, p)
			if err != nil {
				var b []byte
				if b, err = os.ReadFile(f.Source); err == nil {
					err = os.WriteFile(p, b, f.Mode.Perm())
				}
			}
		}
		if err != nil {
			return err
		}
	}
	return nil
}
