package run

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/elastic/go-seccomp-bpf/arch"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"

	"github.com/kiln-build/kiln/internal/contract"
)

// dockerCaps is CapEff of a root process in a Docker container: its 14
// default capabilities.
const dockerCaps = "00000000a80425fb"

// sandboxModes are the ways Image runs an image: as the caller is (as root:
// in a user namespace of its own), as root without a user namespace (a
// cache without idmapped mounts), and in the user namespace a caller
// without root gets.
var sandboxModes = []struct {
	name string
	opts []Option
}{
	{"default", nil},
	{"no-userns", []Option{withoutShift()}},
	{"userns", []Option{withUserNS()}},
}

// runProbe runs the probe image img and returns its stdout.
func runProbe(t *testing.T, img v1.Image, cache string, opts ...Option) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	opts = append([]Option{WithCacheDir(cache), WithStdout(&stdout), WithStderr(&stderr)}, opts...)
	if err := Image(context.Background(), img, opts...); err != nil {
		t.Fatalf("Image() = %v, stdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// status parses /proc/self/status as the probe printed it.
func status(t *testing.T, out string) map[string]string {
	t.Helper()
	st := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok {
			st[k] = strings.TrimSpace(v)
		}
	}
	if st["CapEff"] == "" {
		t.Fatalf("probe printed no /proc/self/status: %q", out)
	}
	return st
}

// TestSandboxEscapes runs images as root inside that try the ways out of a
// container which the sandbox must close: each must be blocked, and the host
// left as it was.
func TestSandboxEscapes(t *testing.T) {
	requireNamespaces(t)
	// The host's root disk: reading it through a device node of the image
	// is the escape that mounted the host's disk.
	var st unix.Stat_t
	if err := unix.Stat("/", &st); err != nil {
		t.Fatal(err)
	}
	major, minor := strconv.Itoa(int(unix.Major(st.Dev))), strconv.Itoa(int(unix.Minor(st.Dev)))
	corePattern, err := os.ReadFile("/proc/sys/kernel/core_pattern")
	if err != nil {
		t.Fatal(err)
	}
	// A service on the host's loopback alone.
	host := listenLoopback(t)
	go func() {
		for {
			c, err := host.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	escapes := [][]string{
		{"mknod", major, minor},
		{"hostloopback", strconv.Itoa(host.Addr().(*net.TCPAddr).Port)},
		{"netadmin"},
		{"mount"},
		{"umount"},
		{"sysrq"},
		{"core_pattern"},
		{"sys"},
		{"kcore"},
		{"ptrace"},
		{"module"},
		{"unshare"},
		{"keyctl"},
		{"bpf"},
	}
	// Escapes through a file the kernel may lack.
	hostFile := map[string]string{"sysrq": "/proc/sysrq-trigger", "kcore": "/proc/kcore"}
	for _, mode := range sandboxModes {
		for _, esc := range escapes {
			t.Run(mode.name+"/"+esc[0], func(t *testing.T) {
				t.Parallel()
				if hostFile[esc[0]] != "" {
					if _, err := os.Stat(hostFile[esc[0]]); err != nil {
						t.Skipf("this kernel has no %s to guard", hostFile[esc[0]])
					}
				}
				cache := t.TempDir()
				img := probeImage(t, v1.Config{User: "0", Cmd: append([]string{"escape"}, esc...)})
				out := runProbe(t, img, cache, mode.opts...)
				t.Logf("escape %s: %s", esc[0], strings.TrimSpace(out))
				if !strings.HasPrefix(out, "blocked: ") {
					t.Errorf("escape %s: %s", esc[0], out)
				}
				rootfs, err := Unpack(context.Background(), img, cache)
				if err != nil {
					t.Fatal(err)
				}
				for _, layer := range rootfs.paths() {
					checkUntouched(t, layer)
				}
				mounts, err := os.ReadFile("/proc/self/mountinfo")
				if err != nil {
					t.Fatal(err)
				}
				if strings.Contains(string(mounts), cache) {
					t.Errorf("escape %s left a mount of the run on the host:\n%s", esc[0], mounts)
				}
			})
		}
	}
	t.Cleanup(func() {
		if b, err := os.ReadFile("/proc/sys/kernel/core_pattern"); err != nil || !bytes.Equal(b, corePattern) {
			t.Errorf("core_pattern = %q, %v, want %q", b, err, corePattern)
		}
	})
}

// TestSandboxCapabilities reads /proc/self/status inside: root holds
// Docker's default capabilities and nothing more, a user none, and both run
// with no_new_privs and a seccomp filter.
func TestSandboxCapabilities(t *testing.T) {
	requireNamespaces(t)
	tests := []struct {
		user string
		want map[string]string
	}{
		{"0", map[string]string{"CapEff": dockerCaps, "CapPrm": dockerCaps, "CapBnd": dockerCaps, "CapInh": "0000000000000000", "CapAmb": "0000000000000000"}},
		{"app", map[string]string{"CapEff": "0000000000000000", "CapPrm": "0000000000000000", "CapBnd": dockerCaps, "CapInh": "0000000000000000", "CapAmb": "0000000000000000"}},
	}
	for _, mode := range sandboxModes {
		for _, tc := range tests {
			t.Run(mode.name+"/"+tc.user, func(t *testing.T) {
				t.Parallel()
				img := probeImage(t, v1.Config{User: tc.user, Cmd: []string{"cat", "/proc/self/status"}})
				st := status(t, runProbe(t, img, t.TempDir(), mode.opts...))
				want := map[string]string{"NoNewPrivs": "1", "Seccomp": "2"}
				for k, v := range tc.want {
					want[k] = v
				}
				for k, v := range want {
					if st[k] != v {
						t.Errorf("/proc/self/status %s = %s, want %s", k, st[k], v)
					}
				}
			})
		}
	}
}

// TestSandboxSetuid runs a non-root image that ships a setuid-root copy of
// the probe: with no_new_privs, it stays the image's user, without
// capabilities, and its escapes are blocked.
func TestSandboxSetuid(t *testing.T) {
	requireNamespaces(t)
	bin := layerFile(t, probeLayer, "usr/local/bin/probe")
	suid := fileEntry("usr/local/bin/suid-probe", 0o4755, bin)
	suid.hdr.Uid, suid.hdr.Gid = 0, 0
	l, err := newLayer(suid)
	if err != nil {
		t.Fatal(err)
	}
	for _, mode := range sandboxModes {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			cache := t.TempDir()
			img := withLayers(t, v1.Config{User: "app", Entrypoint: []string{"/usr/local/bin/suid-probe", "cat", "/proc/self/status"}}, probeLayer, l)
			st := status(t, runProbe(t, img, cache, mode.opts...))
			if want := "1000\t1000\t1000\t1000"; st["Uid"] != want {
				t.Errorf("setuid-root probe Uid = %q, want %q", st["Uid"], want)
			}
			if st["CapEff"] != "0000000000000000" || st["CapPrm"] != "0000000000000000" {
				t.Errorf("setuid-root probe CapEff = %s, CapPrm = %s, want none", st["CapEff"], st["CapPrm"])
			}
			img = withLayers(t, v1.Config{User: "app", Entrypoint: []string{"/usr/local/bin/suid-probe", "escape", "mount"}}, probeLayer, l)
			if out := runProbe(t, img, cache, mode.opts...); !strings.HasPrefix(out, "blocked: ") {
				t.Errorf("setuid-root probe: %s", out)
			}
		})
	}
}

// TestSandboxDevices checks that the standard devices work and that /dev
// holds only them and the usual links and mounts.
func TestSandboxDevices(t *testing.T) {
	requireNamespaces(t)
	for _, mode := range sandboxModes {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			img := probeImage(t, v1.Config{Cmd: []string{"tree", "/dev"}})
			out := runProbe(t, img, t.TempDir(), mode.opts...)
			for _, want := range []string{`"null":"Dcrw-rw-rw-"`, `"urandom":"Dcrw-rw-rw-"`, `"ptmx":"Lrwxrwxrwx -\u003e pts/ptmx"`, `"shm":"dtrwxrwxrwx"`, `"mqueue":"d`} {
				if !strings.Contains(out, want) {
					t.Errorf("/dev = %s, want it to hold %s", out, want)
				}
			}
			for _, name := range []string{"vda", "sda", "mem", "kmsg", "console"} {
				if strings.Contains(out, fmt.Sprintf("%q:", name)) {
					t.Errorf("/dev = %s, want no %s", out, name)
				}
			}
			img = probeImage(t, v1.Config{Cmd: []string{"append", "/dev/null"}})
			runProbe(t, img, t.TempDir(), mode.opts...)
		})
	}
}

// layerFile returns the content of name in l.
func layerFile(t *testing.T, l v1.Layer, name string) string {
	t.Helper()
	rc, err := l.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		hdr, err := tr.Next()
		if err != nil {
			t.Fatalf("%s not in the layer: %v", name, err)
		}
		if hdr.Name == name {
			var buf bytes.Buffer
			if _, err := buf.ReadFrom(tr); err != nil {
				t.Fatal(err)
			}
			return buf.String()
		}
	}
}

// TestSandboxSeccomp runs the filter in a BPF interpreter on the system calls
// Docker's profile refuses and on some it allows.
func TestSandboxSeccomp(t *testing.T) {
	raw, err := DefaultSandbox().filter()
	if err != nil {
		t.Fatalf("filter() = %v", err)
	}
	insts, ok := bpf.Disassemble(raw)
	if !ok {
		t.Fatal("filter() holds instructions the interpreter cannot run")
	}
	vm, err := bpf.NewVM(insts)
	if err != nil {
		t.Fatalf("filter() is not a valid program: %v", err)
	}
	info, err := arch.GetInfo("")
	if err != nil {
		t.Fatal(err)
	}
	const (
		allow  = unix.SECCOMP_RET_ALLOW
		eperm  = unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM)
		enosys = unix.SECCOMP_RET_ERRNO | uint32(unix.ENOSYS)
	)
	type call struct {
		name string
		args []uint64
		want uint32
	}
	var calls []call
	for _, name := range []string{
		"mount", "umount2", "pivot_root", "kexec_load", "kexec_file_load",
		"init_module", "finit_module", "delete_module", "ptrace_unused",
		"bpf", "perf_event_open", "keyctl", "add_key", "request_key",
		"unshare", "setns", "open_by_handle_at", "reboot", "swapon", "swapoff",
		"acct", "settimeofday", "clock_settime", "fsopen", "fsmount", "move_mount",
		"open_tree", "mount_setattr", "sethostname", "setdomainname", "syslog",
		"iopl", "ioperm", "create_module", "lookup_dcookie", "quotactl", "userfaultfd",
	} {
		calls = append(calls, call{name, nil, eperm})
	}
	calls = append(calls,
		call{"clone3", nil, enosys},
		call{"clone", []uint64{unix.CLONE_NEWUSER}, eperm},
		call{"clone", []uint64{unix.CLONE_NEWNS | uint64(unix.SIGCHLD)}, eperm},
		call{"clone", []uint64{unix.CLONE_VM | unix.CLONE_VFORK | uint64(unix.SIGCHLD)}, allow},
		call{"personality", []uint64{0}, allow},
		call{"personality", []uint64{0x0040000}, eperm}, // ADDR_NO_RANDOMIZE
		call{"socket", []uint64{unix.AF_INET}, allow},
		call{"socket", []uint64{unix.AF_UNIX}, allow},
		call{"socket", []uint64{unix.AF_VSOCK}, eperm},
	)
	for _, name := range []string{"read", "write", "openat", "execve", "mknodat", "chroot", "setuid", "capset", "prctl", "ptrace", "wait4", "kill", "futex", "mmap", "epoll_pwait"} {
		calls = append(calls, call{name, nil, allow})
	}
	for _, c := range calls {
		nr, ok := info.SyscallNames[c.name]
		if !ok {
			continue // "ptrace_unused": a number no system call has
		}
		// seccomp_data as the interpreter reads it: 32-bit words, big
		// endian, the low half of each argument first, as on amd64.
		data := make([]byte, 64)
		binary.BigEndian.PutUint32(data[0:], uint32(nr))
		binary.BigEndian.PutUint32(data[4:], uint32(info.ID))
		for i, a := range c.args {
			binary.BigEndian.PutUint32(data[16+8*i:], uint32(a))
			binary.BigEndian.PutUint32(data[20+8*i:], uint32(a>>32))
		}
		got, err := vm.Run(data)
		if err != nil {
			t.Fatalf("running the filter on %s: %v", c.name, err)
		}
		if uint32(got) != c.want {
			t.Errorf("filter(%s%v) = %#x, want %#x", c.name, c.args, got, c.want)
		}
	}
	// A system call of another ABI (i386 through int 0x80) is refused.
	data := make([]byte, 64)
	binary.BigEndian.PutUint32(data[4:], uint32(arch.I386.ID))
	if got, _ := vm.Run(data); uint32(got) != eperm {
		t.Errorf("filter(i386 read) = %#x, want %#x", got, eperm)
	}
}

// TestSandboxUserNamespace checks that root's runs get a user namespace of
// their own, where the function's user owns the files the image gives it
// (its private ones too) and cannot read root's.
func TestSandboxUserNamespace(t *testing.T) {
	requireNamespaces(t)
	if os.Geteuid() != 0 {
		t.Skip("the shifted user namespace is root's")
	}
	own := func(e entry, uid int) entry {
		e.hdr.Uid, e.hdr.Gid = uid, uid
		return e
	}
	files, err := newLayer(
		own(dirEntry("home/fn", 0o700), contract.UID),
		own(fileEntry("home/fn/private", 0o600, "mine\n"), contract.UID),
		own(fileEntry("etc/root-only", 0o600, "root's\n"), 0),
	)
	if err != nil {
		t.Fatal(err)
	}
	cache := t.TempDir()
	run := func(user string, cmd ...string) (string, error) {
		img := withLayers(t, v1.Config{User: user, Entrypoint: append([]string{"/usr/local/bin/probe"}, cmd...)}, probeLayer, files)
		var stdout, stderr bytes.Buffer
		err := Image(context.Background(), img, WithCacheDir(cache), WithStdout(&stdout), WithStderr(&stderr))
		return stdout.String(), err
	}
	out, err := run("0", "cat", "/proc/self/uid_map")
	if err != nil {
		t.Fatalf("Image() = %v", err)
	}
	if f := strings.Fields(out); len(f) != 3 || f[0] != "0" || f[1] == "0" || f[2] != strconv.Itoa(idRange) {
		t.Errorf("uid_map = %q, want 0 mapped onto %d unprivileged ids", out, idRange)
	}
	fn := contract.User
	if _, err := run(fn, "append", "/home/fn/private"); err != nil {
		t.Errorf("function user appending to its private file: %v", err)
	}
	if out, err := run(fn, "cat", "/home/fn/private"); err != nil || out != "mine\n" {
		t.Errorf("function user reading its private file = %q, %v, want %q (the run's writes are its own)", out, err, "mine\n")
	}
	if out, err := run(fn, "cat", "/etc/root-only"); err == nil {
		t.Errorf("function user read root's private file: %q", out)
	}
	if out, err := run("0", "cat", "/etc/root-only"); err != nil || out != "root's\n" {
		t.Errorf("root reading its private file = %q, %v", out, err)
	}
}
