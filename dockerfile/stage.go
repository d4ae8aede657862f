package dockerfile

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"

	"github.com/kiln-build/kiln/layers"
)

// historyComment marks history entries whose created_by follows
// BuildKit's Dockerfile format, as BuildKit's own do.
const historyComment = "buildkit.dockerfile.v0"

// defaultPath is the PATH every stage has unless its base sets one.
const defaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// build is one Build call: the stages built so far.
type build struct {
	opts    Options
	df      *dockerfile
	scratch string
	// indexes list the files of the layers the build reads.
	indexes *layerIndexes

	mu sync.Mutex
	// stages are the stages built or being built.
	stages map[int]*stageFlight
	// globalArgs are the automatic platform args and the ARGs before the
	// first FROM, with build args applied: what FROM lines expand with.
	globalArgs []string
	// declared are the ARGs the built stages and the global scope name,
	// to warn of build args nothing uses; under mu.
	declared map[string]bool
}

// stageFlight is a stage being built, which others wait for.
type stageFlight struct {
	done chan struct{}
	st   *stage
	err  error
}

// stage is the state of a stage while its instructions run.
type stage struct {
	b        *build
	index    int
	platform v1.Platform
	layers   []v1.Layer
	diffIDs  []v1.Hash
	cfg      *v1.ConfigFile
	// env is what expansion and RUN see: the config's Env and the ARGs.
	env []string
	// args are the ARGs the stage declared, in order, for RUN's history.
	args []argValue
	// cmdSet says CMD was given in this stage, which ENTRYPOINT keeps.
	cmdSet bool
	fs     *stageFS
}

type argValue struct {
	key   string
	value *string
}

// stage returns stage i, built once however many stages need it. A stage
// only names stages before it, so there are no cycles.
func (b *build) stage(ctx context.Context, i int) (*stage, error) {
	b.mu.Lock()
	f, ok := b.stages[i]
	if !ok {
		f = &stageFlight{done: make(chan struct{})}
		b.stages[i] = f
	}
	b.mu.Unlock()
	if ok {
		select {
		case <-f.done:
			return f.st, f.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	f.st, f.err = b.buildStage(ctx, i)
	close(f.done)
	return f.st, f.err
}

// deps lists the stages stage i needs, and theirs, in no order.
func (b *build) deps(i int, seen map[int]bool) {
	def := b.df.stages[i]
	add := func(name string) {
		if j, ok := b.df.stageIndex(name); ok && j < i && !seen[j] {
			seen[j] = true
			b.deps(j, seen)
		}
	}
	if base, _, err := b.df.lex().ProcessWord(def.BaseName, shell.EnvsFromSlice(b.globalArgs)); err == nil {
		if j, ok := b.df.stageIndex(base); ok && j < i && strings.EqualFold(b.df.stages[j].Name, base) {
			add(base)
		}
	}
	for _, c := range def.Commands {
		switch c := c.(type) {
		case *instructions.CopyCommand:
			if c.From != "" {
				add(c.From)
			}
		case *instructions.RunCommand:
			for _, m := range instructions.GetMounts(c) {
				if m.From != "" {
					add(m.From)
				}
			}
		}
	}
}

func (b *build) declare(key string) {
	b.mu.Lock()
	b.declared[key] = true
	b.mu.Unlock()
}

func (b *build) buildStage(ctx context.Context, i int) (*stage, error) {
	st, err := b.from(ctx, i)
	if err != nil {
		return nil, err
	}
	for _, c := range b.df.stages[i].Commands {
		if err := st.dispatch(ctx, c); err != nil {
			return nil, b.df.wrap(line(c), err)
		}
	}
	return st, nil
}

// initArgs sets the global args: the automatic platform args, then the
// ARGs before the first FROM.
func (b *build) initArgs() error {
	b.globalArgs = platformArgs(b.opts.Platform, b.opts.BuildPlatform)
	for _, a := range b.df.metaArgs {
		for _, kv := range a.Args {
			b.declare(kv.Key)
			v, ok := b.opts.BuildArgs[kv.Key]
			if !ok && kv.Value != nil {
				var err error
				v, _, err = b.df.lex().ProcessWord(*kv.Value, shell.EnvsFromSlice(b.globalArgs))
				if err != nil {
					return b.df.wrap(line(&a), err)
				}
				ok = true
			}
			if ok {
				b.globalArgs = setEnv(b.globalArgs, kv.Key, v)
			}
		}
	}
	return nil
}

// from starts stage i from what its FROM line names.
func (b *build) from(ctx context.Context, i int) (*stage, error) {
	def := b.df.stages[i]
	at := def.Location[0].Start.Line
	env := shell.EnvsFromSlice(b.globalArgs)
	base, _, err := b.df.lex().ProcessWord(def.BaseName, env)
	if err != nil {
		return nil, b.df.wrap(at, err)
	}
	if base == "" {
		return nil, b.df.errorf(at, "FROM %s names no image", def.BaseName)
	}
	platform := b.opts.Platform
	if def.Platform != "" {
		p, _, err := b.df.lex().ProcessWord(def.Platform, env)
		if err != nil {
			return nil, b.df.wrap(at, err)
		}
		if platform, err = parsePlatform(p, b.opts.Platform); err != nil {
			return nil, b.df.errorf(at, "FROM --platform=%s: %v", def.Platform, err)
		}
	}
	st := &stage{b: b, index: i, platform: platform}
	if j, ok := b.df.stageIndex(base); ok && j < i && b.df.stages[j].Name != "" && strings.EqualFold(b.df.stages[j].Name, base) {
		parent, err := b.stage(ctx, j)
		if err != nil {
			return nil, err
		}
		st.platform = parent.platform
		st.layers = slices.Clone(parent.layers)
		st.diffIDs = slices.Clone(parent.diffIDs)
		st.cfg = parent.cfg.DeepCopy()
		st.cfg.Config.OnBuild = nil
		st.args = slices.Clone(parent.args)
		st.env = slices.Clone(parent.env)
		return st, nil
	}
	var triggers []string
	if base == "scratch" {
		st.cfg = &v1.ConfigFile{}
	} else {
		if b.opts.Bases == nil {
			return nil, b.df.errorf(at, "FROM %s: no base image resolver", base)
		}
		img, err := b.opts.Bases.Resolve(ctx, base, platform)
		if err != nil {
			return nil, b.df.errorf(at, "FROM %s: %v", base, err)
		}
		if err := st.fromImage(img); err != nil {
			return nil, b.df.errorf(at, "FROM %s: %v", base, err)
		}
		triggers = st.cfg.Config.OnBuild
		st.cfg.Config.OnBuild = nil
	}
	st.cfg.Created = v1.Time{}
	if _, ok := lookupEnv(st.cfg.Config.Env, "PATH"); !ok {
		st.cfg.Config.Env = append(st.cfg.Config.Env, defaultPath)
	}
	st.env = slices.Clone(st.cfg.Config.Env)
	for _, t := range triggers {
		if err := st.onbuild(ctx, t); err != nil {
			return nil, b.df.errorf(at, "ONBUILD %s from %s: %v", t, base, err)
		}
	}
	return st, nil
}

// fromImage starts the stage from img's layers and config.
func (st *stage) fromImage(img v1.Image) error {
	cf, err := img.ConfigFile()
	if err != nil {
		return fmt.Errorf("reading its config: %w", err)
	}
	ls, err := img.Layers()
	if err != nil {
		return fmt.Errorf("reading its layers: %w", err)
	}
	if len(ls) != len(cf.RootFS.DiffIDs) {
		return fmt.Errorf("it has %d layers and %d diff IDs", len(ls), len(cf.RootFS.DiffIDs))
	}
	st.cfg = cf.DeepCopy()
	st.layers = ls
	st.diffIDs = slices.Clone(cf.RootFS.DiffIDs)
	// A base whose history names fewer layers than it has gets entries
	// for the missing ones, as BuildKit adds, so that the history and
	// the layers line up.
	withLayer := 0
	for _, h := range st.cfg.History {
		if !h.EmptyLayer {
			withLayer++
		}
	}
	if missing := len(ls) - withLayer; missing > 0 {
		st.cfg.History = append(make([]v1.History, missing), st.cfg.History...)
	}
	return nil
}

// onbuild runs one ONBUILD trigger of the base image, as BuildKit does
// before the stage's own instructions.
func (st *stage) onbuild(ctx context.Context, trigger string) error {
	res, err := parser.Parse(strings.NewReader(trigger))
	if err != nil {
		return err
	}
	for _, node := range res.AST.Children {
		cmd, err := instructions.ParseCommand(node)
		if err != nil {
			return err
		}
		if err := st.dispatch(ctx, cmd); err != nil {
			return err
		}
	}
	return nil
}

// dispatch runs one instruction.
func (st *stage) dispatch(ctx context.Context, c instructions.Command) error {
	if _, isArg := c.(*instructions.ArgCommand); !isArg {
		if ex, ok := c.(instructions.SupportsSingleWordExpansion); ok {
			if err := ex.Expand(st.expand); err != nil {
				return err
			}
		}
	}
	if ex, ok := c.(instructions.SupportsSingleWordExpansionRaw); ok {
		err := ex.ExpandRaw(func(word string) (string, error) {
			lex := shell.NewLex('\\')
			lex.SkipProcessQuotes = true
			s, _, err := lex.ProcessWord(word, shell.EnvsFromSlice(st.env))
			return s, err
		})
		if err != nil {
			return err
		}
	}
	config := &st.cfg.Config
	switch c := c.(type) {
	case *instructions.EnvCommand:
		msg := "ENV"
		for _, kv := range c.Env {
			config.Env = setEnv(config.Env, kv.Key, kv.Value)
			st.env = setEnv(st.env, kv.Key, kv.Value)
			msg += " " + kv.String()
		}
		st.history(msg, false)
	case *instructions.ArgCommand:
		return st.arg(c)
	case *instructions.LabelCommand:
		msg := "LABEL"
		if config.Labels == nil {
			config.Labels = map[string]string{}
		}
		for _, kv := range c.Labels {
			config.Labels[kv.Key] = kv.Value
			msg += " " + kv.String()
		}
		st.history(msg, false)
	case *instructions.MaintainerCommand:
		st.cfg.Author = c.Maintainer
		st.history("MAINTAINER "+c.Maintainer, false)
	case *instructions.UserCommand:
		config.User = c.User
		st.history("USER "+c.User, false)
	case *instructions.ExposeCommand:
		return st.expose(c)
	case *instructions.VolumeCommand:
		if config.Volumes == nil {
			config.Volumes = map[string]struct{}{}
		}
		for _, v := range c.Volumes {
			if v == "" {
				return errors.New("VOLUME names an empty path")
			}
			config.Volumes[v] = struct{}{}
		}
		st.history(fmt.Sprintf("VOLUME %v", c.Volumes), false)
	case *instructions.StopSignalCommand:
		if !validSignal(c.Signal) {
			return fmt.Errorf("STOPSIGNAL %s: not a signal", c.Signal)
		}
		config.StopSignal = c.Signal
		st.history("STOPSIGNAL "+c.Signal, false)
	case *instructions.ShellCommand:
		config.Shell = c.Shell
		st.history(fmt.Sprintf("SHELL %v", c.Shell), false)
	case *instructions.OnbuildCommand:
		// BuildKit records ONBUILD in the config only, not in the history.
		config.OnBuild = append(config.OnBuild, c.Expression)
	case *instructions.HealthCheckCommand:
		h := c.Health
		config.Healthcheck = &v1.HealthConfig{Test: h.Test, Interval: h.Interval, Timeout: h.Timeout, StartPeriod: h.StartPeriod, Retries: h.Retries}
		// The history prints BuildKit's type, StartInterval included,
		// which v1.HealthConfig has no field for.
		st.history(fmt.Sprintf("HEALTHCHECK %+v", *h), false)
	case *instructions.CmdCommand:
		config.Cmd = st.withShell(c.ShellDependantCmdLine)
		config.ArgsEscaped = true
		st.cmdSet = true
		st.history(fmt.Sprintf("CMD %q", config.Cmd), false)
	case *instructions.EntrypointCommand:
		config.Entrypoint = st.withShell(c.ShellDependantCmdLine)
		if !st.cmdSet {
			config.Cmd = nil
		}
		st.history(fmt.Sprintf("ENTRYPOINT %q", config.Entrypoint), false)
	case *instructions.WorkdirCommand:
		return st.workdir(ctx, c)
	case *instructions.CopyCommand:
		return st.copy(ctx, copyFromCopy(c))
	case *instructions.AddCommand:
		return st.copy(ctx, copyFromAdd(c))
	case *instructions.RunCommand:
		return st.run(ctx, c)
	default:
		return fmt.Errorf("%s is not supported by kiln", strings.ToUpper(c.Name()))
	}
	return nil
}

// expand expands $VARS in one word with the stage's environment.
func (st *stage) expand(word string) (string, error) {
	s, _, err := st.b.df.lex().ProcessWord(word, shell.EnvsFromSlice(st.env))
	return s, err
}

// arg declares ARGs: a build arg's value wins over the default, and a bare
// ARG takes the value of the global ARG of that name.
func (st *stage) arg(c *instructions.ArgCommand) error {
	var parts []string
	for _, kv := range c.Args {
		st.b.declare(kv.Key)
		var value *string
		if v, ok := st.b.opts.BuildArgs[kv.Key]; ok {
			value = &v
		} else if kv.Value != nil {
			v, err := st.expand(*kv.Value)
			if err != nil {
				return err
			}
			value = &v
		} else if v, ok := lookupEnv(st.b.globalArgs, kv.Key); ok {
			value = &v
		}
		st.args = append(st.args, argValue{key: kv.Key, value: value})
		part := kv.Key
		if value != nil {
			st.env = setEnv(st.env, kv.Key, *value)
			part += "=" + *value
		}
		parts = append(parts, part)
	}
	st.history("ARG "+strings.Join(parts, " "), false)
	return nil
}

// expose adds ports, "80" as "80/tcp", ranges one by one.
func (st *stage) expose(c *instructions.ExposeCommand) error {
	config := &st.cfg.Config
	if config.ExposedPorts == nil {
		config.ExposedPorts = map[string]struct{}{}
	}
	var words, ports []string
	for _, raw := range c.Ports {
		ws, err := st.b.df.lex().ProcessWords(raw, shell.EnvsFromSlice(st.env))
		if err != nil {
			return err
		}
		words = append(words, ws...)
	}
	for _, p := range words {
		spec, proto, _ := strings.Cut(p, "/")
		if proto == "" {
			proto = "tcp"
		}
		proto = strings.ToLower(proto)
		if proto != "tcp" && proto != "udp" && proto != "sctp" {
			return fmt.Errorf("EXPOSE %s: protocol %q is not tcp, udp or sctp", p, proto)
		}
		lo, hi, isRange := strings.Cut(spec, "-")
		first, err := strconv.ParseUint(lo, 10, 16)
		if err != nil {
			return fmt.Errorf("EXPOSE %s: not a port", p)
		}
		last := first
		if isRange {
			if last, err = strconv.ParseUint(hi, 10, 16); err != nil || last < first {
				return fmt.Errorf("EXPOSE %s: not a port range", p)
			}
		}
		for n := first; n <= last; n++ {
			port := fmt.Sprintf("%d/%s", n, proto)
			config.ExposedPorts[port] = struct{}{}
			ports = append(ports, port)
		}
	}
	st.history(fmt.Sprintf("EXPOSE %v", ports), false)
	return nil
}

// withShell returns a shell-form command line run by the stage's SHELL.
func (st *stage) withShell(c instructions.ShellDependantCmdLine) []string {
	if !c.PrependShell {
		return slices.Clone(c.CmdLine)
	}
	return append(st.shell(), strings.Join(c.CmdLine, " "))
}

func (st *stage) shell() []string {
	if len(st.cfg.Config.Shell) > 0 {
		return slices.Clone(st.cfg.Config.Shell)
	}
	return []string{"/bin/sh", "-c"}
}

// history records an instruction in the image history.
func (st *stage) history(createdBy string, layer bool) {
	st.cfg.History = append(st.cfg.History, v1.History{
		Created:    v1.Time{Time: st.b.opts.Epoch},
		CreatedBy:  createdBy,
		Comment:    historyComment,
		EmptyLayer: !layer,
	})
}

// workdirPath resolves p against the stage's working directory.
func (st *stage) workdirPath(p string) string {
	if path.IsAbs(p) {
		return path.Clean(p)
	}
	wd := st.cfg.Config.WorkingDir
	if wd == "" {
		wd = "/"
	}
	return path.Join(wd, p)
}

func setEnv(env []string, k, v string) []string {
	for i, kv := range env {
		if key, _, _ := strings.Cut(kv, "="); key == k {
			env[i] = k + "=" + v
			return env
		}
	}
	return append(env, k+"="+v)
}

func lookupEnv(env []string, k string) (string, bool) {
	for _, kv := range env {
		if key, v, _ := strings.Cut(kv, "="); key == k {
			return v, true
		}
	}
	return "", false
}

// workdir sets the working directory and creates it, owned by USER, when
// the stage lacks it.
func (st *stage) workdir(ctx context.Context, c *instructions.WorkdirCommand) error {
	wd := st.workdirPath(c.Path)
	st.cfg.Config.WorkingDir = wd
	createdBy := "WORKDIR " + wd
	if wd == "/" {
		st.history(createdBy, false)
		return nil
	}
	k := st.stepKey("workdir").String(wd).String(st.cfg.Config.User)
	return st.layerStep(ctx, k.Sum(), createdBy, createdBy, built(func(ctx context.Context, w io.Writer) error {
		fsys, err := st.view(ctx)
		if err != nil {
			return err
		}
		rel, err := fsys.resolve(wd, true)
		if err != nil {
			return err
		}
		if _, ok := fsys.get(rel); ok {
			return layers.WriteTar(w, nil)
		}
		uid, gid := 0, 0
		if u := st.cfg.Config.User; u != "" {
			if uid, gid, err = st.owner(ctx, u); err != nil {
				return fmt.Errorf("WORKDIR %s: USER %s: %w", wd, u, err)
			}
		}
		d := layers.File{Path: rel, Mode: fs.ModeDir | 0o755, UID: uid, GID: gid}
		return layers.WriteTar(w, withParents([]layers.File{d}, fsys, uid, gid), layers.WithEpoch(st.b.opts.Epoch))
	}))
}
