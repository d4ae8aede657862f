// Command probe is the program the run tests put in their images. It reports
// what it sees from inside a container and behaves in the ways the tests
// need:
//
//	probe info                 print what it sees as JSON and exit
//	probe serve TOKEN          serve that JSON over HTTP on 127.0.0.1:$port with a
//	                           "probe sleep TOKEN" child; exit 0 on SIGTERM
//	probe spawn TOKEN          start "probe sleep TOKEN" and exit at once
//	probe sleep TOKEN          sleep (TOKEN lets the tests find it from the host)
//	probe stubborn             ignore SIGTERM and sleep
//	probe write                write files in /, /tmp and /etc and print what it wrote
//	probe exit N               exit with status N
//	probe get URL              print the body of an HTTP GET of URL
//	probe cat FILE             print FILE
//	probe append FILE          append a line to FILE, creating it
//	probe tree DIR             print the tree under DIR as JSON, as the tests' listTree does
//	probe dial SOCKET          print what a unix socket's server says
//	probe fs OP ARGS [; OP ARGS]...
//	                           change files, one operation after another: write PATH
//	                           TEXT, rm PATH (recursive), mkdir PATH, chown UID:GID PATH,
//	                           link OLD NEW, symlink TARGET NEW, rename OLD NEW
//	probe escape HOW [ARGS]    try one way out of the sandbox (see escapes) and print
//	                           "blocked: REASON" or "escaped: WHAT"; exit 0 either way
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// info is what probe reports; the tests decode the same fields.
type info struct {
	UID      int      `json:"uid"`
	GID      int      `json:"gid"`
	Groups   []int    `json:"groups"`
	Cwd      string   `json:"cwd"`
	PID      int      `json:"pid"`
	PPID     int      `json:"ppid"`
	Hostname string   `json:"hostname"`
	Env      []string `json:"env"`
	PIDNS    string   `json:"pidns"`
	RootFS   string   `json:"rootfs"` // filesystem type of /
	TmpMode  string   `json:"tmpMode"`
	Hosts    string   `json:"hosts"`
	// EtcHostname is /etc/hostname, which some runtimes read.
	EtcHostname string `json:"etcHostname"`
	DevNull     bool   `json:"devNull"` // /dev/null is a character device
	Resolv      string `json:"resolv"`
	NetNS       string `json:"netns"`
}

func main() {
	if len(os.Args) < 2 {
		fail(fmt.Errorf("usage: probe info|serve|spawn|sleep|stubborn|write|exit|get|cat|append|tree"))
	}
	switch os.Args[1] {
	case "info":
		fail(json.NewEncoder(os.Stdout).Encode(gather()))
	case "serve":
		serve(arg(2))
	case "spawn":
		if _, err := sleeper(arg(2)); err != nil {
			fail(err)
		}
		fmt.Println("spawned")
	case "sleep":
		time.Sleep(time.Minute)
	case "stubborn":
		signal.Ignore(syscall.SIGTERM, syscall.SIGINT)
		fmt.Println("ignoring SIGTERM")
		time.Sleep(time.Minute)
	case "write":
		for _, p := range []string{"/probe-wrote", "/tmp/probe-wrote", "/etc/probe-wrote"} {
			if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
				fail(err)
			}
			fmt.Println(p)
		}
	case "exit":
		n, err := strconv.Atoi(arg(2))
		if err != nil {
			fail(err)
		}
		os.Exit(n)
	case "get":
		get(arg(2))
	case "cat":
		b, err := os.ReadFile(arg(2))
		fail(err)
		os.Stdout.Write(b)
	case "append":
		f, err := os.OpenFile(arg(2), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		fail(err)
		_, err = f.WriteString("appended\n")
		fail(err)
		fail(f.Close())
	case "tree":
		fail(json.NewEncoder(os.Stdout).Encode(tree(arg(2))))
	case "dial":
		c, err := net.Dial("unix", arg(2))
		fail(err)
		_, err = io.Copy(os.Stdout, c)
		fail(err)
	case "fs":
		for _, op := range splitOps(os.Args[2:]) {
			fail(fsOp(op))
		}
	case "escape":
		try, ok := escapes[arg(2)]
		if !ok {
			fail(fmt.Errorf("unknown escape %q", arg(2)))
		}
		if err := try(os.Args[3:]); err != nil {
			fmt.Println("blocked:", err)
		}
	default:
		fail(fmt.Errorf("unknown mode %q", os.Args[1]))
	}
}

// splitOps splits args at ";" tokens.
func splitOps(args []string) [][]string {
	ops := [][]string{nil}
	for _, a := range args {
		if a == ";" {
			ops = append(ops, nil)
			continue
		}
		ops[len(ops)-1] = append(ops[len(ops)-1], a)
	}
	return ops
}

func fsOp(op []string) error {
	want := map[string]int{"write": 3, "rm": 2, "mkdir": 2, "chown": 3, "link": 3, "symlink": 3, "rename": 3}
	if len(op) == 0 || want[op[0]] != len(op) {
		return fmt.Errorf("fs: bad operation %q", op)
	}
	switch op[0] {
	case "write":
		return os.WriteFile(op[1], []byte(op[2]), 0o644)
	case "rm":
		return os.RemoveAll(op[1])
	case "mkdir":
		return os.MkdirAll(op[1], 0o755)
	case "chown":
		u, g, _ := strings.Cut(op[1], ":")
		uid, err1 := strconv.Atoi(u)
		gid, err2 := strconv.Atoi(g)
		if err := errors.Join(err1, err2); err != nil {
			return err
		}
		return os.Lchown(op[2], uid, gid)
	case "link":
		return os.Link(op[1], op[2])
	case "symlink":
		return os.Symlink(op[1], op[2])
	default:
		return os.Rename(op[1], op[2])
	}
}

func arg(i int) string {
	if len(os.Args) <= i {
		fail(fmt.Errorf("%s: missing argument %d", os.Args[1], i))
	}
	return os.Args[i]
}

func fail(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "probe:", err)
		os.Exit(1)
	}
}

func gather() info {
	var in info
	in.UID, in.GID, in.PID, in.PPID = os.Getuid(), os.Getgid(), os.Getpid(), os.Getppid()
	in.Groups, _ = os.Getgroups()
	in.Cwd, _ = os.Getwd()
	in.Hostname, _ = os.Hostname()
	in.Env = os.Environ()
	in.PIDNS, _ = os.Readlink("/proc/self/ns/pid")
	in.NetNS, _ = os.Readlink("/proc/self/ns/net")
	if b, err := os.ReadFile("/etc/resolv.conf"); err == nil {
		in.Resolv = string(b)
	}
	if fi, err := os.Stat("/tmp"); err == nil {
		in.TmpMode = fi.Mode().String()
	}
	if b, err := os.ReadFile("/etc/hosts"); err == nil {
		in.Hosts = string(b)
	}
	if b, err := os.ReadFile("/etc/hostname"); err == nil {
		in.EtcHostname = string(b)
	}
	if fi, err := os.Stat("/dev/null"); err == nil {
		in.DevNull = fi.Mode()&os.ModeCharDevice != 0
	}
	if b, err := os.ReadFile("/proc/self/mounts"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) > 2 && f[1] == "/" {
				in.RootFS = f[2]
			}
		}
	}
	return in
}

func sleeper(token string) (*exec.Cmd, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self, "sleep", token)
	return cmd, cmd.Start()
}

func get(url string) {
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		fail(err)
	}
	defer resp.Body.Close()
	if _, err := io.Copy(os.Stdout, resp.Body); err != nil {
		fail(err)
	}
}

func serve(token string) {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	if _, err := sleeper(token); err != nil {
		fail(err)
	}
	srv := &http.Server{
		Addr: "127.0.0.1:" + os.Getenv("port"),
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_ = json.NewEncoder(w).Encode(gather())
		}),
	}
	go func() {
		<-ctx.Done()
		fmt.Println("probe: SIGTERM")
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.ListenAndServe(); err != http.ErrServerClosed {
		fail(err)
	}
	fmt.Println("probe: clean exit")
}

// tree describes every path under root: mode, then file content or symlink
// target.
func tree(root string) map[string]string {
	t := map[string]string{}
	fail(filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == root {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		desc := fi.Mode().String()
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			desc += " -> " + target
		case fi.Mode().IsRegular():
			b, _ := os.ReadFile(p)
			desc += " " + string(b)
		}
		t[filepath.ToSlash(rel)] = desc
		return nil
	}))
	return t
}

// escapes are the ways out of a container that the sandbox must close. Each
// returns why it was blocked, or prints "escaped: ..." and returns nil. None
// does harm when it succeeds: what it opens it closes unused.
var escapes = map[string]func(args []string) error{
	// mknod MAJOR MINOR: make the host's disk a block device, then read it.
	"mknod": func(args []string) error {
		if len(args) != 2 {
			return errors.New("usage: escape mknod MAJOR MINOR")
		}
		major, _ := strconv.Atoi(args[0])
		minor, _ := strconv.Atoi(args[1])
		var errs []error
		for _, p := range []string{"/tmp/disk", "/dev/disk", "/disk"} {
			if err := unix.Mknod(p, unix.S_IFBLK|0o600, int(unix.Mkdev(uint32(major), uint32(minor)))); err != nil {
				errs = append(errs, fmt.Errorf("mknod %s: %w", p, err))
				continue
			}
			f, err := os.Open(p)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			n, err := f.Read(make([]byte, 512))
			f.Close()
			if err != nil {
				errs = append(errs, err)
				continue
			}
			fmt.Printf("escaped: read %d bytes of the host's disk through %s\n", n, p)
			return nil
		}
		return errors.Join(errs...)
	},
	"mount": func([]string) error {
		if err := unix.Mount("tmpfs", "/tmp", "tmpfs", 0, ""); err != nil {
			return fmt.Errorf("mount: %w", err)
		}
		fmt.Println("escaped: mounted a tmpfs")
		return nil
	},
	"umount": func([]string) error {
		if err := unix.Unmount("/proc/kcore", unix.MNT_DETACH); err != nil {
			return fmt.Errorf("umount2: %w", err)
		}
		fmt.Println("escaped: unmounted the mask of /proc/kcore")
		return nil
	},
	"sysrq": func([]string) error { return openForWrite("/proc/sysrq-trigger") },
	"core_pattern": func([]string) error {
		return openForWrite("/proc/sys/kernel/core_pattern")
	},
	"sys": func([]string) error {
		var st unix.Statfs_t
		if err := unix.Statfs("/sys", &st); err != nil {
			return fmt.Errorf("statfs /sys: %w", err)
		}
		if st.Flags&unix.ST_RDONLY == 0 {
			fmt.Println("escaped: /sys is writable")
			return nil
		}
		return openForWrite("/sys/kernel/uevent_helper", "/sys/kernel/mm/ksm/run", "/sys/kernel/profiling")
	},
	"kcore": func([]string) error {
		f, err := os.Open("/proc/kcore")
		if err != nil {
			return err
		}
		defer f.Close()
		n, err := f.Read(make([]byte, 64))
		if n > 0 {
			fmt.Printf("escaped: read %d bytes of /proc/kcore\n", n)
			return nil
		}
		return fmt.Errorf("read /proc/kcore: %d bytes, %v", n, err)
	},
	// hostloopback PORT: reach a service the host serves on its loopback
	// alone, as 127.0.0.1: the run's loopback must be its own.
	"hostloopback": func(args []string) error {
		if len(args) != 1 {
			return nil
		}
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+args[0], 2*time.Second)
		if err != nil {
			return fmt.Errorf("dial the host's 127.0.0.1:%s: %w", args[0], err)
		}
		c.Close()
		fmt.Println("escaped: reached the host's loopback")
		return nil
	},
	// netadmin: change the run's network, as only CAP_NET_ADMIN may: take
	// its loopback down.
	"netadmin": func([]string) error {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		ifr, err := unix.NewIfreq("lo")
		if err != nil {
			return err
		}
		ifr.SetUint16(unix.IFF_LOOPBACK)
		if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
			return fmt.Errorf("take loopback down: %w", err)
		}
		fmt.Println("escaped: took the loopback down")
		return nil
	},
	"ptrace": func([]string) error {
		if err := unix.PtraceAttach(1); err != nil {
			return fmt.Errorf("ptrace PID 1: %w", err)
		}
		_ = unix.PtraceDetach(1)
		fmt.Println("escaped: attached to PID 1")
		return nil
	},
	// Both loaders; EPERM means the kernel refused before reading the module.
	"module": func([]string) error {
		self, err := os.Open("/proc/self/exe")
		if err != nil {
			return err
		}
		defer self.Close()
		ferr := unix.FinitModule(int(self.Fd()), "", 0)
		ierr := unix.InitModule([]byte("not a module"), "")
		if errors.Is(ferr, unix.EPERM) && errors.Is(ierr, unix.EPERM) {
			return fmt.Errorf("finit_module: %w; init_module: %w", ferr, ierr)
		}
		fmt.Printf("escaped: the module loader answered finit_module: %v, init_module: %v\n", ferr, ierr)
		return nil
	},
	"unshare": func([]string) error {
		if err := unix.Unshare(unix.CLONE_NEWUSER | unix.CLONE_NEWNS); err != nil {
			return fmt.Errorf("unshare: %w", err)
		}
		fmt.Println("escaped: new namespaces")
		return nil
	},
	"keyctl": func([]string) error {
		if _, err := unix.AddKey("user", "kiln-probe", []byte("x"), unix.KEY_SPEC_PROCESS_KEYRING); err != nil {
			return fmt.Errorf("add_key: %w", err)
		}
		fmt.Println("escaped: added a key")
		return nil
	},
	// EPERM is the sandbox's answer; without it, a nil attribute is EFAULT.
	"bpf": func([]string) error {
		_, _, errno := unix.Syscall(unix.SYS_BPF, unix.BPF_PROG_LOAD, 0, 0)
		if errno == unix.EPERM {
			return fmt.Errorf("bpf: %w", errno)
		}
		fmt.Printf("escaped: bpf answered %v\n", errno)
		return nil
	},
}

// openForWrite tries to open the first of paths that exists for writing, and
// closes it unwritten.
func openForWrite(paths ...string) error {
	for _, p := range paths {
		f, err := os.OpenFile(p, os.O_WRONLY, 0)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		f.Close()
		fmt.Println("escaped: opened", p, "for writing")
		return nil
	}
	return fmt.Errorf("none of %v exists", paths)
}
