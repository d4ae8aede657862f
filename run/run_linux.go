package run

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"syscall"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sys/unix"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/internal/envlist"
)

// defaultPath is the PATH an image without one gets, as with Docker.
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// initSpec is what Image hands to the init, as JSON on a pipe.
type initSpec struct {
	// Lower holds the image's layer directories, Layers, top first.
	Lower    string   `json:"lower"`
	Layers   []string `json:"layers"`
	Scratch  string   `json:"scratch"` // per-run directory for the overlay
	Args     []string `json:"args"`
	Env      []string `json:"env"`
	User     identity `json:"user"`
	Dir      string   `json:"dir"`
	Hostname string   `json:"hostname"`
	Mounts   []Mount  `json:"mounts,omitempty"`
	// ReadOnly: the root is remounted read-only, with a tmpfs on /tmp.
	ReadOnly bool `json:"readOnly,omitempty"`
	// UserNS: the init runs in a user namespace where only User is mapped,
	// so it neither sets groups nor changes user.
	UserNS bool `json:"userns"`
	// Shifted: the init runs as root of a user namespace that maps the
	// image's ids 0 to idRange-1 onto unprivileged host ids (see idRange),
	// so it sets the user's groups and ids as root does; the layers and
	// the sources of Mounts come as detached, idmapped mounts on mountsFD.
	Shifted bool `json:"shifted,omitempty"`
	// SubIDs: the init runs in a user namespace where newuidmap and
	// newgidmap mapped the caller to root and its subordinate ids (ids)
	// to the others, so it becomes root there and sets the user's ids,
	// as root does; it mounts the layers itself, as with UserNS.
	SubIDs bool    `json:"subIDs,omitempty"`
	ids    *subIDs `json:"-"`
	// offline: the run has its loopback alone, wanted so.
	offline bool
	// Step: the run is a build step, whose init writes the upper
	// directory as a layer tar on LayerFD once the command succeeded,
	// clamping times to Epoch (Unix seconds).
	Step bool `json:"step,omitempty"`
	// From are a step's bind mounts of other stages' trees, after Mounts;
	// then come its Secrets and Tmpfs mounts, and Owners apply to its
	// cache mounts that are empty.
	From    []fromMount  `json:"from,omitempty"`
	Secrets []secretFile `json:"secrets,omitempty"`
	Tmpfs   []string     `json:"tmpfs,omitempty"`
	Owners  []owner      `json:"owners,omitempty"`
	LayerFD int          `json:"layerFD,omitempty"`
	Epoch   int64        `json:"epoch,omitempty"`
	// Sandbox confines the run; CapMask holds its capabilities and Seccomp
	// its filter, assembled here so that a faulty profile fails the run
	// before it starts.
	// Network: slirp4netns connects the run's network namespace to the
	// outside; else it has its loopback alone.
	Network bool `json:"network,omitempty"`
	// HostNames lead to the host's loopback, besides HostAliases.
	HostNames []string `json:"hostNames,omitempty"`
	// Publish lists the ports served on the listeners the init gets from
	// PublishFD on, in order.
	Publish   []int             `json:"publish,omitempty"`
	PublishFD int               `json:"publishFD,omitempty"`
	Sandbox   *Sandbox          `json:"sandbox"`
	CapMask   uint64            `json:"capMask"`
	Seccomp   []unix.SockFilter `json:"seccomp"`
}

// fromMount binds Source of the tree that Layers (in Lower, top first)
// make, over a discarded writable layer, at Target.
type fromMount struct {
	Layers   []string `json:"layers"`
	Source   string   `json:"source"`
	Target   string   `json:"target"`
	ReadOnly bool     `json:"readOnly,omitempty"`
}

// secretFile is a secret a step reads at Target.
type secretFile struct {
	Target string `json:"target"`
	Data   []byte `json:"data"`
	UID    int    `json:"uid"`
	GID    int    `json:"gid"`
	Mode   uint32 `json:"mode"`
}

// owner is who owns the directory Target, with what mode, if it is empty.
type owner struct {
	Target string `json:"target"`
	UID    int    `json:"uid"`
	GID    int    `json:"gid"`
	Mode   uint32 `json:"mode"`
}

// initStatus is the init's answer: empty once the entrypoint started.
type initStatus struct {
	Error string `json:"error,omitempty"`
}

// File descriptors of the init: the spec and status pipes and, for a
// shifted run, the socket that passes mounts.
const (
	specFD   = 3
	statusFD = 4
	mountsFD = 5
)

// Image runs img: it unpacks it (see Unpack), then runs its entrypoint with
// the image's environment, user and working directory, in new mount, PID,
// UTS, IPC and network namespaces, confined by DefaultSandbox.
// As root, the run also gets a user namespace of its own, where the image's
// ids 0 to 65535 are unprivileged host ids (root's /etc/subuid range, else
// from 0x70000000), so that root in the container is not root on the host;
// the layers are seen through idmapped mounts, so the image's files belong to
// the image's users, and the entrypoint gets the image user's ids and
// supplementary groups. Where the cache's filesystem has no idmapped mounts
// (overlayfs, as when kiln runs in a container), root's run goes without
// the user namespace, confined all the same. Without root, everything runs
// in a user namespace that maps the caller, and only the caller, to the
// image's user and group: that user then owns every file of the image, and
// has no supplementary groups.
//
// Image returns when the entrypoint exits: nil on status 0, an *ExitError
// otherwise. When ctx is done the init gets SIGTERM and passes it on; a run
// that then exits within the grace period (with status 0 or by that signal)
// returns nil, and one still running after it is killed and returns an
// error. Either way no process of the run is left.
func Image(ctx context.Context, img v1.Image, opts ...Option) error {
	o, err := newOptions(opts)
	if err != nil {
		return err
	}
	store, err := cache.Open(o.cacheDir)
	if err != nil {
		return err
	}
	rootfs, release, err := unpack(ctx, store, img)
	if err != nil {
		return err
	}
	// Held until the run ends: no prune of the cache removes the image
	// under it.
	defer release()
	spec, err := newSpec(img, rootfs, o)
	if err != nil {
		return err
	}
	scratch, remove, err := store.TempDir("run-")
	if err != nil {
		return fmt.Errorf("creating scratch space: %w", err)
	}
	// Nothing is mounted here any more once the init is gone: its mounts
	// lived in its own mount namespace.
	defer remove()
	spec.Scratch = scratch
	spec.Shifted = o.shift
	return startShifted(ctx, spec, o, nil)
}

// startShifted starts spec, and again without the user namespace of a
// shifted run if the cache's filesystem has no idmapped mounts.
func startShifted(ctx context.Context, spec *initSpec, o *options, layer io.Writer) error {
	err := start(ctx, spec, o, layer)
	if spec.Shifted && errors.Is(err, errNoIDMap) {
		// The cache's filesystem (overlayfs, when kiln itself runs in a
		// container) has no idmapped mounts: the image's files could
		// not belong to its users. Confined all the same, without the
		// user namespace.
		spec.Shifted = false
		err = start(ctx, spec, o, layer)
	}
	return err
}

func newSpec(img v1.Image, rootfs *Rootfs, o *options) (*initSpec, error) {
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("reading image config: %w", err)
	}
	d, err := img.Digest()
	if err != nil {
		return nil, fmt.Errorf("reading image digest: %w", err)
	}
	c := cf.Config
	args := append(slices.Clone(c.Entrypoint), c.Cmd...)
	if len(args) == 0 {
		return nil, fmt.Errorf("image %s has no entrypoint or command", d)
	}
	id, err := lookupUser(rootfs.paths(), c.User)
	if err != nil {
		return nil, err
	}
	dir := c.WorkingDir
	if dir == "" {
		dir = "/"
	}
	hostname := d.Hex[:12]
	defaults := []string{"PATH=" + defaultPath, "HOSTNAME=" + hostname, "HOME=" + id.Home}
	sb, capMask, seccomp, err := defaultConfinement()
	if err != nil {
		return nil, err
	}
	return &initSpec{
		Sandbox:   sb,
		CapMask:   capMask,
		Seccomp:   seccomp,
		Lower:     rootfs.Dir,
		Layers:    rootfs.Layers,
		Args:      args,
		Env:       envlist.Merge(defaults, c.Env, o.env),
		User:      id,
		Dir:       dir,
		Hostname:  hostname,
		HostNames: o.aliases,
		UserNS:    o.userNS,
		Mounts:    o.mounts,
		ReadOnly:  o.readOnly,
	}, nil
}

// start runs spec; a step's layer tar goes to layer.
func start(ctx context.Context, spec *initSpec, o *options, layer io.Writer) error {
	specR, specW, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("creating spec pipe: %w", err)
	}
	defer specR.Close()
	defer specW.Close()
	statusR, statusW, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("creating status pipe: %w", err)
	}
	defer statusR.Close()
	defer statusW.Close()
	files := []*os.File{specR, statusW} // specFD, statusFD
	var mountsSock *os.File
	if spec.Shifted {
		pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("creating mount socket: %w", err)
		}
		mountsSock = os.NewFile(uintptr(pair[0]), "mounts")
		initSock := os.NewFile(uintptr(pair[1]), "mounts")
		defer mountsSock.Close()
		defer initSock.Close()
		files = append(files, initSock) // mountsFD
	}
	var layerR, layerW *os.File
	if spec.Step {
		if layerR, layerW, err = os.Pipe(); err != nil {
			return fmt.Errorf("creating layer pipe: %w", err)
		}
		defer layerR.Close()
		defer layerW.Close()
		spec.LayerFD = 3 + len(files)
		files = append(files, layerW)
	}
	spec.Publish, spec.PublishFD = nil, 3+len(files)
	for _, p := range o.publish {
		// A duplicate, closed once the init has its own.
		f, err := p.listener.File()
		if err != nil {
			return fmt.Errorf("publishing port %d: %w", p.port, err)
		}
		defer f.Close()
		files = append(files, f)
		spec.Publish = append(spec.Publish, p.port)
	}

	// The init writes to stderr from a goroutine of exec's, unless it is
	// a file; kiln's own warnings go to it too.
	stderr := o.stderr
	if _, isFile := stderr.(*os.File); stderr != nil && !isFile {
		stderr = &syncWriter{w: stderr}
	}
	warn := func(err error) {
		if stderr != nil {
			fmt.Fprintf(stderr, "kiln: %v\n", err)
		}
	}
	slirp := ""
	if !spec.offline {
		if slirp, err = exec.LookPath("slirp4netns"); err != nil {
			warn(fmt.Errorf("slirp4netns not found (install slirp4netns): %w", ErrNoNetwork))
		}
	}

	// /proc/self/exe rather than os.Executable: it still works when the
	// binary was replaced on disk while running.
	cmd := exec.CommandContext(ctx, "/proc/self/exe", InitArg)
	cmd.Args[0] = os.Args[0]
	cmd.Env = []string{}
	cmd.Stdout = o.stdout
	cmd.Stderr = stderr
	cmd.ExtraFiles = files
	attr := &syscall.SysProcAttr{
		Cloneflags: syscall.CLONE_NEWNS | syscall.CLONE_NEWPID | syscall.CLONE_NEWUTS | syscall.CLONE_NEWIPC | syscall.CLONE_NEWNET,
		// The run must not outlive us, even if we are killed.
		Pdeathsig: syscall.SIGKILL,
		// Ctrl-C reaches us alone; the run gets SIGTERM through ctx, as
		// the watchdog contract expects.
		Setpgid: true,
	}
	uidBase, gidBase := subIDBase("/etc/subuid"), subIDBase("/etc/subgid")
	if spec.Shifted {
		// The init creates the overlay's directories in the scratch
		// space as the container's root.
		if err := os.Chown(spec.Scratch, int(uidBase), int(gidBase)); err != nil {
			return fmt.Errorf("handing scratch space to the container: %w", err)
		}
		attr.Cloneflags |= syscall.CLONE_NEWUSER
		attr.UidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: int(uidBase), Size: idRange}}
		attr.GidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: int(gidBase), Size: idRange}}
		attr.GidMappingsEnableSetgroups = true
		// Host root is not mapped: become the namespace's root.
		attr.Credential = &syscall.Credential{Uid: 0, Gid: 0, Groups: []uint32{}}
	}
	if spec.SubIDs {
		// No mapping yet: newuidmap writes it once the init exists. The
		// init, unmapped until then, keeps what it needs to become the
		// namespace's root and build the container as ambient
		// capabilities.
		attr.Cloneflags |= syscall.CLONE_NEWUSER
		attr.AmbientCaps = []uintptr{
			unix.CAP_SETUID, unix.CAP_SETGID,
			unix.CAP_SYS_ADMIN, unix.CAP_SYS_CHROOT,
			unix.CAP_DAC_OVERRIDE, unix.CAP_FOWNER, unix.CAP_CHOWN,
			unix.CAP_SETPCAP, unix.CAP_NET_ADMIN,
		}
	}
	if spec.UserNS {
		attr.Cloneflags |= syscall.CLONE_NEWUSER
		attr.UidMappings = []syscall.SysProcIDMap{{ContainerID: int(spec.User.UID), HostID: os.Geteuid(), Size: 1}}
		attr.GidMappings = []syscall.SysProcIDMap{{ContainerID: int(spec.User.GID), HostID: os.Getegid(), Size: 1}}
		if spec.User.UID != 0 {
			// A non-zero user loses its capabilities at exec; the init
			// keeps the ones it needs as ambient ones, and drops them
			// for the entrypoint. Overlayfs works with its mounter's
			// credentials, and expects them to bypass file permissions
			// (its work dir has mode 0) as root's would.
			// It also needs SETPCAP to drop the others from its
			// bounding set, and NET_ADMIN to bring up its loopback.
			attr.AmbientCaps = []uintptr{
				unix.CAP_SYS_ADMIN, unix.CAP_SYS_CHROOT,
				unix.CAP_DAC_OVERRIDE, unix.CAP_FOWNER, unix.CAP_CHOWN,
				unix.CAP_SETPCAP, unix.CAP_NET_ADMIN,
			}
		}
	}
	cmd.SysProcAttr = attr
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = o.grace

	// Pdeathsig fires when the thread that started the child exits, not
	// the process: keep this goroutine on its thread until the run ends.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting the container init: %w", err)
	}
	specR.Close()
	statusW.Close()
	if layerW != nil {
		// The init's copy alone: the layer ends when it closes it.
		layerW.Close()
	}
	if spec.SubIDs {
		if err := spec.ids.mapInto(cmd.Process.Pid); err != nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			return err
		}
	}
	if spec.Shifted {
		if err := sendMounts(cmd.Process.Pid, spec, mountsSock); err != nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			return err
		}
	}
	if slirp != "" {
		net, err := startNetwork(ctx, slirp, cmd.Process.Pid, spec.UserNS || spec.SubIDs)
		switch {
		case ctx.Err() != nil:
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			return ctx.Err()
		case err != nil:
			// Such as /dev/net/tun closed to the user: the function
			// still runs, confined to its loopback, and the user knows.
			warn(fmt.Errorf("%w: %w", err, ErrNoNetwork))
		default:
			defer net.end()
			spec.Network = true
		}
	}
	if o.started != nil {
		o.started(cmd.Process.Pid)
	}
	// A failed write means the init died; Wait says why.
	_ = json.NewEncoder(specW).Encode(spec)
	specW.Close()
	var st initStatus
	dec := json.NewDecoder(statusR)
	statusErr := dec.Decode(&st)
	var layerErr error
	if layerR != nil && statusErr == nil && st.Error == "" {
		layerErr = receiveLayer(layer, layerR, dec)
		if layerErr != nil {
			_ = cmd.Process.Kill()
		}
	}
	waitErr := cmd.Wait()

	stopped := ctx.Err() != nil
	switch {
	case st.Error != "":
		return fmt.Errorf("starting %s: %s", spec.Args[0], st.Error)
	case statusErr != nil && !stopped:
		return fmt.Errorf("container init exited before starting %s: %w", spec.Args[0], waitErr)
	case cmd.ProcessState == nil:
		return fmt.Errorf("waiting for %s: %w", spec.Args[0], waitErr)
	}
	ws := cmd.ProcessState.Sys().(syscall.WaitStatus)
	code := ws.ExitStatus()
	if ws.Signaled() {
		if stopped && ws.Signal() == syscall.SIGKILL {
			return fmt.Errorf("%s still running %s after SIGTERM: killed", spec.Args[0], o.grace)
		}
		code = 128 + int(ws.Signal())
	}
	if code == 0 && layerErr != nil {
		return layerErr
	}
	if code == 0 || stopped && (code == 128+int(syscall.SIGTERM) || code == 128+int(syscall.SIGINT)) {
		return nil
	}
	return &ExitError{Code: code}
}

// receiveLayer copies the layer tar the init of a step writes on r to w,
// then reads the init's second answer from dec, which says whether the
// whole layer was written. A command that failed sends no layer.
func receiveLayer(w io.Writer, r io.Reader, dec *json.Decoder) error {
	if _, err := io.Copy(w, r); err != nil {
		return fmt.Errorf("receiving the step's layer: %w", err)
	}
	var st initStatus
	if err := dec.Decode(&st); err != nil {
		return fmt.Errorf("receiving the step's layer: the init exited: %w", err)
	}
	if st.Error != "" {
		return fmt.Errorf("making the step's layer: %s", st.Error)
	}
	return nil
}

// sendMounts makes the mounts a shifted init cannot make itself, since it
// may not reach their paths, and passes them to it: the scratch directory,
// the layers (idmapped onto its user namespace), then the sources of the
// spec's Mounts (idmapped where their filesystem allows).
func sendMounts(pid int, spec *initSpec, sock *os.File) error {
	userns, err := unix.Open(fmt.Sprintf("/proc/%d/ns/user", pid), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("opening the run's user namespace: %w", err)
	}
	defer unix.Close(userns)
	var fds []int
	defer func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	}()
	fd, err := detachedMount(spec.Scratch, userns, false, false, false)
	if err != nil {
		return err
	}
	fds = append(fds, fd)
	if fd, err = detachedMount(spec.Lower, userns, false, true, true); err != nil {
		return err
	}
	fds = append(fds, fd)
	for _, m := range spec.Mounts {
		fi, err := os.Stat(m.Source)
		if err != nil {
			return fmt.Errorf("mount source: %w", err)
		}
		// A bound file or directory whose filesystem has no idmapped
		// mounts shows the host's owners, as nobody.
		fd, err := detachedMount(m.Source, userns, fi.IsDir(), false, true)
		if errors.Is(err, errNoIDMap) {
			fd, err = detachedMount(m.Source, userns, fi.IsDir(), false, false)
		}
		if err != nil {
			return err
		}
		fds = append(fds, fd)
	}
	return sendFDs(sock, fds)
}
