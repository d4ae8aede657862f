package run

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// initFailed is the init's exit status when it could not start the
// entrypoint (as with Docker's 125); the status pipe carries the reason.
const initFailed = 125

// forwarded are the signals the init passes on to the entrypoint.
var forwarded = []os.Signal{
	syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP,
	syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2,
}

// InitMain is the container init that Image starts, as PID 1 of the new
// namespaces. It reads its spec, builds the root filesystem (overlay, /proc,
// /dev, /etc/hosts, /etc/resolv.conf), changes root into it, starts the
// entrypoint as the image's user, passes signals on to it and reaps
// orphans, and exits with the entrypoint's status, which makes the kernel
// kill anything the entrypoint left behind. It never returns.
//
// A program that calls Image must call InitMain when os.Args[1] is InitArg.
func InitMain() {
	// Credentials (capabilities, no_new_privs, seccomp) are per thread and
	// the entrypoint is forked from this one: stay on it.
	runtime.LockOSThread()
	// Catch signals before anything else: as PID 1 of a namespace, the
	// init would otherwise ignore them. Those that arrive before the
	// entrypoint exists wait in the channel and are passed on once it does.
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, forwarded...)
	syscall.CloseOnExec(specFD)
	syscall.CloseOnExec(statusFD)

	status := os.NewFile(statusFD, "status")
	c, err := startContainer()
	if err != nil {
		if json.NewEncoder(status).Encode(initStatus{Error: err.Error()}) != nil {
			// No parent to tell: started by hand, most likely.
			fmt.Fprintf(os.Stderr, "%s: %v\n", InitArg, err)
		}
		os.Exit(initFailed)
	}
	_ = json.NewEncoder(status).Encode(initStatus{})
	code := supervise(c.pid, sigs, c.step != nil)
	if c.step != nil {
		// What the command left running must not write while its layer
		// is read: the kernel would kill it when the init exits anyway.
		killAll()
		// A step's second answer: its layer, written or not.
		var st initStatus
		if err := c.step.finish(code == 0); err != nil {
			st.Error = err.Error()
		}
		_ = json.NewEncoder(status).Encode(st)
	}
	status.Close()
	os.Exit(code)
}

// container is a started run.
type container struct {
	pid  int
	step *stepState // a step's, else nil
}

func startContainer() (*container, error) {
	f := os.NewFile(specFD, "spec")
	var s initSpec
	err := json.NewDecoder(f).Decode(&s)
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("reading the run spec: %w", err)
	}
	if s.SubIDs {
		// newuidmap has mapped the caller to root and its subordinate
		// ids to the others (the parent sends the spec after): become
		// that root, with the capabilities the parent made ambient.
		if err := syscall.Setresgid(0, 0, 0); err != nil {
			return nil, fmt.Errorf("becoming the container's root group: %w", err)
		}
		if err := syscall.Setresuid(0, 0, 0); err != nil {
			return nil, fmt.Errorf("becoming the container's root: %w", err)
		}
	}
	// The init's other threads keep the privileges this one drops: no
	// process of the run may trace it or read its memory. The entrypoint,
	// a new program, is dumpable again. (Not earlier: newuidmap must
	// read the init's /proc entry, which this makes root's.)
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		return nil, fmt.Errorf("making the init undumpable: %w", err)
	}
	// Docker's umask: the caller's may be stricter, and it would leak into
	// the files the init and the entrypoint create.
	unix.Umask(0o022)
	var m detached
	if s.Shifted {
		syscall.CloseOnExec(mountsFD)
		fds, err := recvFDs(mountsFD, 2+len(s.Mounts))
		if err != nil {
			return nil, err
		}
		unix.Close(mountsFD)
		m.scratch, m.lower, m.binds = fds[0], fds[1], fds[2:]
	}
	if err := loopbackUp(); err != nil {
		return nil, err
	}
	fds := make([]int, len(s.Publish))
	for i := range fds {
		fds[i] = s.PublishFD + i
	}
	// Before the entrypoint starts, which must not inherit the listeners;
	// until it listens, a connection is reset, as by a closed port.
	if err := publish(fds, s.Publish); err != nil {
		return nil, err
	}
	if s.Step {
		syscall.CloseOnExec(s.LayerFD)
	}
	if err := setupRoot(&s, &m); err != nil {
		return nil, err
	}
	pid, err := startEntrypoint(&s)
	if err != nil {
		return nil, err
	}
	return &container{pid: pid, step: m.step}, nil
}

// detached are the mounts the parent made for a shifted init, which may not
// reach their paths: the layers, and the sources of the spec's Mounts.
type detached struct {
	scratch int
	lower   int
	binds   []int
	// step is a step's upper directory, found by mountOverlay.
	step *stepState
}

// setupRoot builds the container's root and changes into it. It works in
// the run's scratch directory.
func setupRoot(s *initSpec, d *detached) error {
	// Nothing mounted from now on may show on the host.
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("making mounts private: %w", err)
	}
	if s.Shifted {
		// A shifted init may not reach the scratch path: it comes as a
		// detached mount, attached on /tmp of the init's own mount
		// namespace, which the host does not see, until the root change.
		if err := unix.MoveMount(d.scratch, "", unix.AT_FDCWD, "/tmp", unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
			return fmt.Errorf("attaching scratch space: %w", err)
		}
		unix.Close(d.scratch)
		if err := os.Chdir("/tmp"); err != nil {
			return fmt.Errorf("entering scratch space: %w", err)
		}
	} else if err := os.Chdir(s.Scratch); err != nil {
		return fmt.Errorf("entering scratch space: %w", err)
	}
	root, err := mountOverlay(s, d)
	if err != nil {
		return err
	}
	if err := mountProc(root); err != nil {
		return err
	}
	if err := mountSys(root); err != nil {
		return err
	}
	if err := mountDev(root, s.Sandbox.Devices, s.UserNS); err != nil {
		return err
	}
	for i, m := range s.Mounts {
		fd := -1
		if s.Shifted {
			fd = d.binds[i]
		}
		if err := bindMount(root, m, fd); err != nil {
			return err
		}
	}
	for i, f := range s.From {
		if err := mountFrom(root, fmt.Sprintf("from%d", i), f); err != nil {
			return err
		}
	}
	if err := mountSecrets(root, s.Secrets); err != nil {
		return err
	}
	for _, t := range s.Tmpfs {
		p, err := mountpoint(root, t)
		if err != nil {
			return err
		}
		// World-writable, sticky, as BuildKit mounts it.
		if err := unix.Mount("tmpfs", p, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=1777"); err != nil {
			return fmt.Errorf("mounting a tmpfs at %s: %w", t, err)
		}
	}
	for _, o := range s.Owners {
		if err := own(root, o); err != nil {
			return err
		}
	}
	// The host's resolver settings, read while the host's files are in
	// reach; the run's are written after the root change, where the
	// image's symlinks cannot point at the host.
	hostResolv, _ := os.ReadFile("/etc/resolv.conf")
	if err := pivot(root); err != nil {
		return err
	}
	// On the container's own /proc and /sys, now that no image symlink
	// can lead these paths elsewhere.
	if err := hidePaths(s.Sandbox); err != nil {
		return err
	}

	if err := unix.Sethostname([]byte(s.Hostname)); err != nil {
		return fmt.Errorf("setting hostname: %w", err)
	}
	if !s.Step {
		// A step's /tmp is the stage's, as with Docker: its layer must
		// not change it.
		if err := os.MkdirAll("/tmp", 0o755); err != nil {
			return fmt.Errorf("creating /tmp: %w", err)
		}
		if err := os.Chmod("/tmp", os.ModeSticky|0o777); err != nil {
			return fmt.Errorf("making /tmp writable: %w", err)
		}
	}
	var extra []string
	if s.Network {
		extra = s.HostNames
	}
	if err := replaceFile("/etc/hosts", etcHosts(s.Hostname, s.Network, extra)); err != nil {
		return err
	}
	if err := replaceFile("/etc/resolv.conf", resolvConf(hostResolv, s.Network)); err != nil {
		return err
	}
	// As a container runtime writes it, for the functions that read it.
	if err := replaceFile("/etc/hostname", []byte(s.Hostname+"\n")); err != nil {
		return err
	}
	if s.Step {
		// All that setup wrote is there now; the working directory, made
		// next, is the step's own, as with Docker.
		if err := d.step.traceSetup(); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(s.Dir, 0o755); err != nil {
		return fmt.Errorf("creating working directory: %w", err)
	}
	if s.ReadOnly {
		if err := unix.Mount("tmpfs", "/tmp", "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=1777"); err != nil {
			return fmt.Errorf("mounting /tmp: %w", err)
		}
		// Only the root mount: /proc, /dev, /tmp and bound mounts keep
		// their own flags.
		if err := unix.Mount("", "/", "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY|unix.MS_NODEV, ""); err != nil {
			return fmt.Errorf("making the root read-only: %w", err)
		}
	}
	return nil
}

// mountOverlay stacks the cached layers read-only under a per-run writable
// layer, so a run never changes the cache, and returns the merged tree,
// relative to the scratch directory, the working directory.
func mountOverlay(s *initSpec, d *detached) (string, error) {
	if len(s.Layers) == 0 {
		return "", errors.New("mounting overlay: no layers")
	}
	for _, d := range []string{"l", "merged", "rw"} {
		// Searchable: in a user namespace, overlayfs checks the
		// mounter's access to them.
		if err := os.Mkdir(d, 0o700); err != nil {
			return "", fmt.Errorf("creating scratch space: %w", err)
		}
	}
	lower := "l"
	if s.Shifted {
		// Idmapped and read-only already.
		if err := unix.MoveMount(d.lower, "", unix.AT_FDCWD, lower, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
			return "", fmt.Errorf("attaching layers: %w", err)
		}
		unix.Close(d.lower)
	} else {
		if err := unix.Mount(s.Lower, lower, "", unix.MS_BIND, ""); err != nil {
			return "", fmt.Errorf("binding layers: %w", err)
		}
		// Read-only, so that not even a bug can write into the cache.
		if err := unix.Mount("", lower, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
			return "", fmt.Errorf("binding layers read-only: %w", err)
		}
	}
	var rootStat unix.Stat_t
	if err := unix.Stat(filepath.Join(lower, s.Layers[0]), &rootStat); err != nil {
		return "", fmt.Errorf("reading top layer: %w", err)
	}
	// Relative paths: the scratch path may hold commas or colons, which
	// the overlay option string cannot carry, and short ones: it must fit
	// in a page.
	lowers := make([]string, len(s.Layers))
	for i, l := range s.Layers {
		lowers[i] = "l/" + l
	}
	opts := "lowerdir=" + strings.Join(lowers, ":") + ",upperdir=rw/upper,workdir=rw/work"
	if s.UserNS || s.Shifted || s.SubIDs || s.Step {
		// trusted.* attributes are off limits in a user namespace, and a
		// step's init reads the upper directory's attributes without
		// CAP_SYS_ADMIN, which the sandbox drops. (With them go the
		// directory redirects and metacopy files a layer could not
		// hold: a directory moved is copied, as mv does on EXDEV.)
		opts += ",userxattr"
	}
	mount := func() error {
		// The root of the merged tree takes the upper root's owner and
		// mode: give it the image's.
		if err := os.Mkdir("rw/upper", 0o755); err != nil {
			return err
		}
		if err := unix.Chown("rw/upper", int(rootStat.Uid), int(rootStat.Gid)); err != nil {
			return err
		}
		if err := unix.Chmod("rw/upper", rootStat.Mode&0o7777); err != nil {
			return err
		}
		if err := os.Mkdir("rw/work", 0o700); err != nil {
			return err
		}
		// No device node of the image can be opened: a container runtime's
		// device cgroup does that job there.
		return unix.Mount("overlay", "merged", "overlay", unix.MS_NODEV, opts)
	}
	if err := mount(); err != nil {
		// Overlay refuses some upper filesystems (overlay itself, when
		// kiln runs in a container); tmpfs always works, at the cost of
		// keeping the run's writes in memory.
		if terr := unix.Mount("tmpfs", "rw", "tmpfs", 0, "mode=0700"); terr != nil {
			return "", fmt.Errorf("mounting overlay: %w", err)
		}
		if err := mount(); err != nil {
			return "", fmt.Errorf("mounting overlay: %w", err)
		}
	}
	if s.Step {
		st, err := openUpper("rw/upper", s.LayerFD, s.Epoch)
		if err != nil {
			return "", err
		}
		d.step = st
	}
	return "merged", nil
}

// mountFrom stacks f's layers, from the lower directory mountOverlay
// attached, over a writable layer on a tmpfs in dir, which the run
// discards, and binds f.Source of that tree at f.Target.
func mountFrom(root, dir string, f fromMount) error {
	if err := os.Mkdir(dir, 0o700); err != nil {
		return fmt.Errorf("mounting %s: %w", f.Target, err)
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "mode=0700"); err != nil {
		return fmt.Errorf("mounting %s: %w", f.Target, err)
	}
	merged := filepath.Join(dir, "merged")
	for _, d := range []string{"upper", "work", "merged"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			return fmt.Errorf("mounting %s: %w", f.Target, err)
		}
	}
	lowers := make([]string, len(f.Layers))
	for i, l := range f.Layers {
		lowers[i] = "l/" + l
	}
	opts := "lowerdir=" + strings.Join(lowers, ":") + ",upperdir=" + dir + "/upper,workdir=" + dir + "/work,userxattr"
	flags := uintptr(unix.MS_NODEV | unix.MS_NOSUID)
	if f.ReadOnly {
		flags |= unix.MS_RDONLY
	}
	if err := unix.Mount("overlay", merged, "overlay", flags, opts); err != nil {
		return fmt.Errorf("mounting %s: stacking its layers: %w", f.Target, err)
	}
	src, err := resolveIn(merged, f.Source, true)
	if err != nil {
		return fmt.Errorf("mounting %s: source %s: %w", f.Target, f.Source, err)
	}
	return bindMount(root, Mount{Source: src, Target: f.Target, ReadOnly: f.ReadOnly}, -1)
}

// mountSecrets writes secrets on a tmpfs of the scratch directory, with
// their owners and modes, and binds each at its target, read-only: they
// never reach a disk, nor the container's writable layer.
func mountSecrets(root string, secrets []secretFile) error {
	if len(secrets) == 0 {
		return nil
	}
	if err := os.Mkdir("secrets", 0o700); err != nil {
		return fmt.Errorf("mounting secrets: %w", err)
	}
	if err := unix.Mount("tmpfs", "secrets", "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "mode=0700"); err != nil {
		return fmt.Errorf("mounting secrets: %w", err)
	}
	for i, sec := range secrets {
		p := filepath.Join("secrets", strconv.Itoa(i))
		if err := os.WriteFile(p, sec.Data, 0o600); err != nil {
			return fmt.Errorf("writing secret %s: %w", sec.Target, err)
		}
		if err := os.Chown(p, sec.UID, sec.GID); err != nil {
			return fmt.Errorf("secret %s: %w", sec.Target, err)
		}
		if err := os.Chmod(p, fs.FileMode(sec.Mode)); err != nil {
			return fmt.Errorf("secret %s: %w", sec.Target, err)
		}
		if err := bindMount(root, Mount{Source: p, Target: sec.Target, ReadOnly: true}, -1); err != nil {
			return err
		}
	}
	return nil
}

// own gives the mounted directory o.Target its owner and mode if it is
// empty, as a cache mount is when it is new.
func own(root string, o owner) error {
	p, err := resolveIn(root, o.Target, true)
	if err != nil {
		return fmt.Errorf("resolving %s: %w", o.Target, err)
	}
	names, err := readNames(p)
	if err != nil || len(names) > 0 {
		return err
	}
	if err := os.Chown(p, o.UID, o.GID); err != nil {
		return fmt.Errorf("owning %s: %w", o.Target, err)
	}
	if err := os.Chmod(p, fs.FileMode(o.Mode)); err != nil {
		return fmt.Errorf("owning %s: %w", o.Target, err)
	}
	return nil
}

func mountProc(root string) error {
	p, err := mountpoint(root, "/proc")
	if err != nil {
		return err
	}
	if err := unix.Mount("proc", p, "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return fmt.Errorf("mounting /proc: %w", err)
	}
	return nil
}

// mountSys mounts a read-only /sys, as a container runtime does. A user
// namespace may not mount sysfs for the host's network namespace: there the
// host's /sys is bound, read-only all the way down, as rootless runtimes do.
func mountSys(root string) error {
	p, err := mountpoint(root, "/sys")
	if err != nil {
		return err
	}
	const flags = unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC | unix.MS_RDONLY
	if err := unix.Mount("sysfs", p, "sysfs", flags, ""); err == nil {
		return nil
	}
	if err := unix.Mount("/sys", p, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("binding /sys: %w", err)
	}
	attr := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV | unix.MOUNT_ATTR_NOEXEC}
	if err := unix.MountSetattr(unix.AT_FDCWD, p, unix.AT_RECURSIVE, &attr); err != nil {
		return fmt.Errorf("making /sys read-only: %w", err)
	}
	return nil
}

// mountDev gives the container a /dev of its own with the sandbox's devices,
// bound from the host since a user namespace cannot create device nodes.
// The tmpfs itself is nodev: a node made there cannot be opened.
func mountDev(root string, devices []string, userNS bool) error {
	dev, err := mountpoint(root, "/dev")
	if err != nil {
		return err
	}
	if err := unix.Mount("tmpfs", dev, "tmpfs", unix.MS_NOSUID|unix.MS_NOEXEC|unix.MS_NODEV, "mode=0755,size=1m"); err != nil {
		return fmt.Errorf("mounting /dev: %w", err)
	}
	for _, host := range devices {
		name, ok := strings.CutPrefix(host, "/dev/")
		if !ok || name == "" || strings.Contains(name, "/") {
			return fmt.Errorf("device %s: not a node directly in /dev", host)
		}
		if _, err := os.Stat(host); err != nil {
			continue // a minimal host may lack one; the image can live without it
		}
		p := filepath.Join(dev, name)
		if err := os.WriteFile(p, nil, 0o666); err != nil {
			return fmt.Errorf("creating %s: %w", host, err)
		}
		if err := unix.Mount(host, p, "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("binding %s: %w", host, err)
		}
	}
	for name, target := range map[string]string{
		"fd": "/proc/self/fd", "stdin": "/proc/self/fd/0",
		"stdout": "/proc/self/fd/1", "stderr": "/proc/self/fd/2",
	} {
		if err := os.Symlink(target, filepath.Join(dev, name)); err != nil {
			return fmt.Errorf("creating /dev/%s: %w", name, err)
		}
	}
	// POSIX shared memory, private to the IPC namespace.
	shm := filepath.Join(dev, "shm")
	if err := os.Mkdir(shm, 0o755); err != nil {
		return fmt.Errorf("creating /dev/shm: %w", err)
	}
	if err := unix.Mount("tmpfs", shm, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "mode=1777,size=64m"); err != nil {
		return fmt.Errorf("mounting /dev/shm: %w", err)
	}
	// POSIX message queues, of the IPC namespace.
	mq := filepath.Join(dev, "mqueue")
	if err := os.Mkdir(mq, 0o755); err != nil {
		return fmt.Errorf("creating /dev/mqueue: %w", err)
	}
	if err := unix.Mount("mqueue", mq, "mqueue", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return fmt.Errorf("mounting /dev/mqueue: %w", err)
	}
	// Pseudo-terminals of the run's own, and the ptmx that opens them.
	pts := filepath.Join(dev, "pts")
	if err := os.Mkdir(pts, 0o755); err != nil {
		return fmt.Errorf("creating /dev/pts: %w", err)
	}
	ptsOpts := "newinstance,ptmxmode=0666,mode=0620"
	if !userNS {
		// The tty group, which a user namespace may not map.
		ptsOpts += ",gid=5"
	}
	if err := unix.Mount("devpts", pts, "devpts", unix.MS_NOSUID|unix.MS_NOEXEC, ptsOpts); err != nil {
		return fmt.Errorf("mounting /dev/pts: %w", err)
	}
	if err := os.Symlink("pts/ptmx", filepath.Join(dev, "ptmx")); err != nil {
		return fmt.Errorf("creating /dev/ptmx: %w", err)
	}
	return nil
}

// hidePaths masks the sandbox's masked paths and makes its read-only ones
// so. It runs in the container's root.
func hidePaths(sb *Sandbox) error {
	for _, p := range sb.MaskedPaths {
		fi, err := os.Lstat(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("masking %s: %w", p, err)
		}
		if fi.IsDir() {
			err = unix.Mount("tmpfs", p, "tmpfs", unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "size=0")
		} else {
			err = unix.Mount("/dev/null", p, "", unix.MS_BIND, "")
		}
		if err != nil {
			return fmt.Errorf("masking %s: %w", p, err)
		}
	}
	for _, p := range sb.ReadonlyPaths {
		if _, err := os.Lstat(p); errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err := unix.Mount(p, p, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("binding %s: %w", p, err)
		}
		if err := remount(p, unix.MS_RDONLY); err != nil {
			return fmt.Errorf("making %s read-only: %w", p, err)
		}
	}
	return nil
}

// remount remounts the bind mount at p with flags added to those it has: in
// a user namespace, a remount must keep the flags the kernel locked.
func remount(p string, flags uintptr) error {
	var st unix.Statfs_t
	if err := unix.Statfs(p, &st); err != nil {
		return fmt.Errorf("reading mount flags: %w", err)
	}
	flags |= unix.MS_BIND | unix.MS_REMOUNT
	for stFlag, msFlag := range map[int64]uintptr{
		unix.ST_RDONLY: unix.MS_RDONLY,
		unix.ST_NOSUID: unix.MS_NOSUID, unix.ST_NODEV: unix.MS_NODEV, unix.ST_NOEXEC: unix.MS_NOEXEC,
		unix.ST_NOATIME: unix.MS_NOATIME, unix.ST_NODIRATIME: unix.MS_NODIRATIME, unix.ST_RELATIME: unix.MS_RELATIME,
	} {
		if st.Flags&stFlag != 0 {
			flags |= msFlag
		}
	}
	return unix.Mount("", p, "", flags, "")
}

// mountpoint returns the host path of the directory name in root, creating
// it if needed. It resolves name inside root: mounting on a path the kernel
// resolves could follow an image's symlink onto the host.
func mountpoint(root, name string) (string, error) {
	p, err := resolveIn(root, name, true)
	if err != nil {
		return "", fmt.Errorf("resolving %s: %w", name, err)
	}
	if p == root {
		// A symlink to "/": the mount would hide the whole image.
		return "", fmt.Errorf("%s: resolves to the root of the image", name)
	}
	if err := os.Mkdir(p, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return "", fmt.Errorf("creating %s: %w", name, err)
	}
	if fi, err := os.Lstat(p); err != nil || !fi.IsDir() {
		return "", fmt.Errorf("%s: not a directory in the image", name)
	}
	return p, nil
}

// bindMount binds m.Source at m.Target in root, creating the target in the
// run's writable layer if the image lacks it. The target is resolved inside
// root, as for mountpoint. A shifted init gets the source as fd, a detached
// mount, and attaches it.
func bindMount(root string, m Mount, fd int) error {
	isDir, err := sourceIsDir(m.Source, fd)
	if err != nil {
		return fmt.Errorf("mount source: %w", err)
	}
	p, err := resolveIn(root, m.Target, true)
	if err != nil {
		return fmt.Errorf("resolving mount target %s: %w", m.Target, err)
	}
	if p == root {
		return fmt.Errorf("mount target %s: resolves to the root of the image", m.Target)
	}
	// resolveIn left no symlink among the parts that exist, and what is
	// missing is created as plain directories.
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return fmt.Errorf("creating mount target %s: %w", m.Target, err)
	}
	if isDir {
		err = os.Mkdir(p, 0o755)
	} else {
		var f *os.File
		if f, err = os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644); err == nil {
			err = f.Close()
		}
	}
	if err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("creating mount target %s: %w", m.Target, err)
	}
	if fi, err := os.Lstat(p); err != nil || fi.IsDir() != isDir {
		return fmt.Errorf("mount target %s: a directory and a file cannot be bound on each other", m.Target)
	}
	if fd >= 0 {
		err = unix.MoveMount(fd, "", unix.AT_FDCWD, p, unix.MOVE_MOUNT_F_EMPTY_PATH)
		unix.Close(fd)
	} else {
		err = unix.Mount(m.Source, p, "", unix.MS_BIND|unix.MS_REC, "")
	}
	if err != nil {
		return fmt.Errorf("binding %s at %s: %w", m.Source, m.Target, err)
	}
	// No device node or setuid file of the host's is of use inside.
	flags := uintptr(unix.MS_NOSUID | unix.MS_NODEV)
	if m.ReadOnly {
		flags |= unix.MS_RDONLY
	}
	if err := remount(p, flags); err != nil {
		return fmt.Errorf("mounting %s: %w", m.Target, err)
	}
	return nil
}

// pivot makes root the root of the mount namespace and drops the host's.
func pivot(root string) error {
	if err := unix.Chdir(root); err != nil {
		return err
	}
	// pivot_root(".", ".") stacks the old root on the new one, where it
	// can be detached without a directory to park it in.
	if err := unix.PivotRoot(".", "."); err == nil {
		if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
			return fmt.Errorf("detaching the host root: %w", err)
		}
	} else {
		// pivot_root cannot leave an initramfs; move and chroot instead.
		if err := unix.Mount(".", "/", "", unix.MS_MOVE, ""); err != nil {
			return fmt.Errorf("moving the root: %w", err)
		}
		if err := unix.Chroot("."); err != nil {
			return fmt.Errorf("changing root: %w", err)
		}
	}
	return unix.Chdir("/")
}

// replaceFile writes a fresh file at name, replacing whatever the image has
// there (a symlink into a directory that does not exist, often).
func replaceFile(name string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", name, err)
	}
	if err := os.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("replacing %s: %w", name, err)
	}
	if err := os.WriteFile(name, data, 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", name, err)
	}
	return nil
}

func startEntrypoint(s *initSpec) (int, error) {
	argv0, err := lookPath(s.Args[0], envValue(s.Env, "PATH"))
	if err != nil {
		return 0, err
	}
	sys := &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if !s.UserNS {
		// Groups always, even empty: the init still has the caller's.
		groups := s.User.Groups
		if groups == nil {
			groups = []uint32{}
		}
		sys.Credential = &syscall.Credential{Uid: s.User.UID, Gid: s.User.GID, Groups: groups}
	}
	// Last, on the thread that forks: the sandbox also refuses what the
	// steps before need. (In a user namespace the init holds ambient
	// capabilities, which confine drops.)
	if err := confine(s.CapMask, s.Seccomp); err != nil {
		return 0, err
	}
	pid, err := syscall.ForkExec(argv0, s.Args, &syscall.ProcAttr{
		Dir:   s.Dir,
		Env:   s.Env,
		Files: []uintptr{0, 1, 2},
		Sys:   sys,
	})
	if err != nil {
		return 0, fmt.Errorf("executing %s: %w", argv0, err)
	}
	return pid, nil
}

// killAll kills every other process of the PID namespace and reaps them.
func killAll() {
	_ = syscall.Kill(-1, syscall.SIGKILL)
	for {
		var ws syscall.WaitStatus
		_, err := syscall.Wait4(-1, &ws, 0, nil)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil {
			return // ECHILD: none left
		}
	}
}

// supervise passes signals on to the entrypoint, reaps every child (orphans
// are re-parented to PID 1) and returns the entrypoint's status.
// A step's command is stopped at once: a cancelled build has nothing to
// wait for.
func supervise(pid int, sigs <-chan os.Signal, step bool) int {
	go func() {
		for sig := range sigs {
			if step && (sig == syscall.SIGTERM || sig == syscall.SIGINT) {
				_ = syscall.Kill(-1, syscall.SIGKILL)
				continue
			}
			_ = syscall.Kill(pid, sig.(syscall.Signal))
		}
	}()
	for {
		var ws syscall.WaitStatus
		got, err := syscall.Wait4(-1, &ws, 0, nil)
		switch {
		case errors.Is(err, syscall.EINTR):
			continue
		case err != nil:
			return initFailed // no children: cannot happen while pid lives
		case got != pid:
			continue
		case ws.Signaled():
			return 128 + int(ws.Signal())
		default:
			return ws.ExitStatus()
		}
	}
}

// lookPath finds file in the image's PATH, as a shell in the image would.
func lookPath(file, path string) (string, error) {
	if strings.Contains(file, "/") {
		return file, nil
	}
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			dir = "."
		}
		p := filepath.Join(dir, file)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s: not found in PATH %s", file, path)
}

func envValue(env []string, key string) string {
	v := ""
	for _, kv := range env {
		if k, val, _ := strings.Cut(kv, "="); k == key {
			v = val
		}
	}
	return v
}

// sourceIsDir tells whether a mount source, the file fd refers to if it is
// not -1, is a directory.
func sourceIsDir(name string, fd int) (bool, error) {
	if fd < 0 {
		fi, err := os.Stat(name)
		if err != nil {
			return false, err
		}
		return fi.IsDir(), nil
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return false, &fs.PathError{Op: "stat", Path: name, Err: err}
	}
	return st.Mode&unix.S_IFMT == unix.S_IFDIR, nil
}
