package run

import (
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"strings"
	"unsafe"

	bpfseccomp "github.com/elastic/go-seccomp-bpf"
	"github.com/elastic/go-seccomp-bpf/arch"
	"github.com/moby/profiles/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// Sandbox is what confines a run, whoever starts kiln: the limits a
// container runtime puts on a container by default, defined here once and
// applied by the init to itself and to the entrypoint. DefaultSandbox is the
// one Image uses.
type Sandbox struct {
	// Capabilities are the only capabilities the entrypoint may ever hold,
	// named as in capabilities(7) ("CAP_CHOWN"): the bounding set, and the
	// effective and permitted sets of a root entrypoint. The inheritable
	// and ambient sets are empty, as in Docker since CVE-2022-24769, so a
	// non-root entrypoint holds none.
	Capabilities []string `json:"capabilities"`
	// MaskedPaths are hidden: an empty read-only tmpfs covers a directory,
	// /dev/null a file. Paths the kernel lacks are skipped.
	MaskedPaths []string `json:"maskedPaths"`
	// ReadonlyPaths are bound read-only onto themselves.
	ReadonlyPaths []string `json:"readonlyPaths"`
	// Devices are the device nodes in the run's /dev, a tmpfs where no
	// other device can be opened: the host's, bound in, as rootless
	// runtimes do, since a user namespace cannot create device nodes.
	Devices []string `json:"devices"`
	// Seccomp is the seccomp profile, in Docker's format; rules that need
	// a capability outside Capabilities do not apply. The init also sets
	// no_new_privs, so no setuid or file capability can add to these.
	Seccomp *seccomp.Seccomp `json:"-"`
}

// DefaultSandbox returns Docker's defaults (those of moby and runc): its
// 14 capabilities, its masked and read-only /proc and /sys paths, the
// standard devices and its default seccomp profile.
func DefaultSandbox() *Sandbox {
	return &Sandbox{
		Capabilities: []string{
			"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER",
			"CAP_MKNOD", "CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID",
			"CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
			"CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
		},
		MaskedPaths: []string{
			"/proc/asound", "/proc/acpi", "/proc/interrupts", "/proc/kcore",
			"/proc/keys", "/proc/latency_stats", "/proc/timer_list",
			"/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
			"/sys/firmware", "/sys/devices/virtual/powercap",
		},
		ReadonlyPaths: []string{
			"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
		},
		Devices: []string{
			"/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty",
		},
		Seccomp: seccomp.DefaultProfile(),
	}
}

// capabilityNumbers maps the names of capabilities(7) to their numbers.
var capabilityNumbers = map[string]int{
	"CAP_CHOWN": unix.CAP_CHOWN, "CAP_DAC_OVERRIDE": unix.CAP_DAC_OVERRIDE,
	"CAP_DAC_READ_SEARCH": unix.CAP_DAC_READ_SEARCH, "CAP_FOWNER": unix.CAP_FOWNER,
	"CAP_FSETID": unix.CAP_FSETID, "CAP_KILL": unix.CAP_KILL,
	"CAP_SETGID": unix.CAP_SETGID, "CAP_SETUID": unix.CAP_SETUID,
	"CAP_SETPCAP": unix.CAP_SETPCAP, "CAP_LINUX_IMMUTABLE": unix.CAP_LINUX_IMMUTABLE,
	"CAP_NET_BIND_SERVICE": unix.CAP_NET_BIND_SERVICE, "CAP_NET_BROADCAST": unix.CAP_NET_BROADCAST,
	"CAP_NET_ADMIN": unix.CAP_NET_ADMIN, "CAP_NET_RAW": unix.CAP_NET_RAW,
	"CAP_IPC_LOCK": unix.CAP_IPC_LOCK, "CAP_IPC_OWNER": unix.CAP_IPC_OWNER,
	"CAP_SYS_MODULE": unix.CAP_SYS_MODULE, "CAP_SYS_RAWIO": unix.CAP_SYS_RAWIO,
	"CAP_SYS_CHROOT": unix.CAP_SYS_CHROOT, "CAP_SYS_PTRACE": unix.CAP_SYS_PTRACE,
	"CAP_SYS_PACCT": unix.CAP_SYS_PACCT, "CAP_SYS_ADMIN": unix.CAP_SYS_ADMIN,
	"CAP_SYS_BOOT": unix.CAP_SYS_BOOT, "CAP_SYS_NICE": unix.CAP_SYS_NICE,
	"CAP_SYS_RESOURCE": unix.CAP_SYS_RESOURCE, "CAP_SYS_TIME": unix.CAP_SYS_TIME,
	"CAP_SYS_TTY_CONFIG": unix.CAP_SYS_TTY_CONFIG, "CAP_MKNOD": unix.CAP_MKNOD,
	"CAP_LEASE": unix.CAP_LEASE, "CAP_AUDIT_WRITE": unix.CAP_AUDIT_WRITE,
	"CAP_AUDIT_CONTROL": unix.CAP_AUDIT_CONTROL, "CAP_SETFCAP": unix.CAP_SETFCAP,
	"CAP_MAC_OVERRIDE": unix.CAP_MAC_OVERRIDE, "CAP_MAC_ADMIN": unix.CAP_MAC_ADMIN,
	"CAP_SYSLOG": unix.CAP_SYSLOG, "CAP_WAKE_ALARM": unix.CAP_WAKE_ALARM,
	"CAP_BLOCK_SUSPEND": unix.CAP_BLOCK_SUSPEND, "CAP_AUDIT_READ": unix.CAP_AUDIT_READ,
	"CAP_PERFMON": unix.CAP_PERFMON, "CAP_BPF": unix.CAP_BPF,
	"CAP_CHECKPOINT_RESTORE": unix.CAP_CHECKPOINT_RESTORE,
}

// capabilityMask returns Capabilities as a bit mask, bit N for
// capability N, as /proc/PID/status shows them.
func (s *Sandbox) capabilityMask() (uint64, error) {
	var mask uint64
	for _, name := range s.Capabilities {
		n, ok := capabilityNumbers[name]
		if !ok {
			return 0, fmt.Errorf("sandbox: unknown capability %q", name)
		}
		mask |= 1 << n
	}
	return mask, nil
}

// filter assembles the seccomp profile, for the capabilities kept and this
// machine's architecture, into a classic BPF program. Rules that name
// system calls this architecture lacks are skipped, as libseccomp does.
// Other ABIs of the architecture (i386 and x32 on amd64) are refused as a
// whole: kiln runs images of the native architecture only.
func (s *Sandbox) filter() ([]bpf.RawInstruction, error) {
	if s.Seccomp == nil {
		return nil, nil
	}
	body, err := json.Marshal(s.Seccomp)
	if err != nil {
		return nil, fmt.Errorf("sandbox: encoding the seccomp profile: %w", err)
	}
	// The profile's rules depend on the capabilities kept; moby resolves
	// them against a runtime spec's bounding set.
	rs := &specs.Spec{Process: &specs.Process{Capabilities: &specs.LinuxCapabilities{Bounding: s.Capabilities}}}
	resolved, err := seccomp.LoadProfile(string(body), rs)
	if err != nil {
		return nil, fmt.Errorf("sandbox: resolving the seccomp profile: %w", err)
	}
	info, err := arch.GetInfo("")
	if err != nil {
		return nil, fmt.Errorf("sandbox: seccomp: %w", err)
	}
	policy := bpfseccomp.Policy{}
	if policy.DefaultAction, err = seccompAction(resolved.DefaultAction, resolved.DefaultErrnoRet); err != nil {
		return nil, err
	}
	if policy.DefaultAction != bpfseccomp.ActionErrno {
		return nil, fmt.Errorf("sandbox: seccomp default action %s: only errno EPERM is supported", resolved.DefaultAction)
	}
	for _, rule := range resolved.Syscalls {
		group := bpfseccomp.SyscallGroup{}
		if group.Action, err = seccompAction(rule.Action, rule.ErrnoRet); err != nil {
			return nil, err
		}
		conds, err := seccompConditions(rule.Args)
		if err != nil {
			return nil, fmt.Errorf("sandbox: seccomp rule for %s: %w", strings.Join(rule.Names, ", "), err)
		}
		for _, name := range rule.Names {
			if _, ok := info.SyscallNames[name]; !ok {
				continue
			}
			if len(conds) == 0 {
				group.Names = append(group.Names, name)
			} else {
				group.NamesWithCondtions = append(group.NamesWithCondtions, bpfseccomp.NameWithConditions{Name: name, Conditions: conds})
			}
		}
		policy.Syscalls = append(policy.Syscalls, group)
	}
	insts, err := policy.Assemble()
	if err != nil {
		return nil, fmt.Errorf("sandbox: assembling the seccomp filter: %w", err)
	}
	raw, err := bpf.Assemble(insts)
	if err != nil {
		return nil, fmt.Errorf("sandbox: assembling the seccomp filter: %w", err)
	}
	return raw, nil
}

func seccompAction(a specs.LinuxSeccompAction, errno *uint) (bpfseccomp.Action, error) {
	switch a {
	case specs.ActAllow:
		return bpfseccomp.ActionAllow, nil
	case specs.ActErrno:
		if errno == nil || *errno == uint(unix.EPERM) {
			return bpfseccomp.ActionErrno, nil
		}
		if *errno > 0xffff {
			return 0, fmt.Errorf("sandbox: seccomp errno %d: out of range", *errno)
		}
		return bpfseccomp.ActionErrno | bpfseccomp.Action(*errno), nil
	}
	return 0, fmt.Errorf("sandbox: seccomp action %s: not supported", a)
}

// seccompConditions turns a rule's argument comparisons, all of which must
// hold, into the library's.
func seccompConditions(args []specs.LinuxSeccompArg) (bpfseccomp.ArgumentConditions, error) {
	var conds bpfseccomp.ArgumentConditions
	for _, a := range args {
		c := bpfseccomp.Condition{Argument: uint32(a.Index), Value: a.Value}
		switch a.Op {
		case specs.OpEqualTo:
			c.Operation = bpfseccomp.Equal
		case specs.OpNotEqual:
			c.Operation = bpfseccomp.NotEqual
		case specs.OpLessThan:
			c.Operation = bpfseccomp.LessThan
		case specs.OpLessEqual:
			c.Operation = bpfseccomp.LessOrEqual
		case specs.OpGreaterThan:
			c.Operation = bpfseccomp.GreaterThan
		case specs.OpGreaterEqual:
			c.Operation = bpfseccomp.GreaterOrEqual
		case specs.OpMaskedEqual:
			// (arg & mask) == 0 is "none of the bits set"; other values
			// have no counterpart in the library.
			if a.ValueTwo != 0 {
				return nil, fmt.Errorf("masked comparison with %#x: not supported", a.ValueTwo)
			}
			c.Operation = bpfseccomp.BitsNotSet
		default:
			return nil, fmt.Errorf("comparison %s: not supported", a.Op)
		}
		conds = append(conds, c)
	}
	return conds, nil
}

// sockFilters converts a program into the kernel's instruction type.
func sockFilters(raw []bpf.RawInstruction) []unix.SockFilter {
	out := make([]unix.SockFilter, len(raw))
	for i, r := range raw {
		out[i] = unix.SockFilter{Code: r.Op, Jt: r.Jt, Jf: r.Jf, K: r.K}
	}
	return out
}

// confine applies the sandbox's limits to the calling thread, which must be
// locked to its goroutine and must be the one that then forks the
// entrypoint: capabilities, no_new_privs and seccomp are per thread and are
// inherited. The seccomp filter goes last: it refuses what the steps
// before it need.
func confine(capMask uint64, filter []unix.SockFilter) error {
	last, err := lastCapability()
	if err != nil {
		return err
	}
	for c := 0; c <= last; c++ {
		if capMask&(1<<c) != 0 {
			continue
		}
		if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0); err != nil {
			return fmt.Errorf("dropping capability %d from the bounding set: %w", c, err)
		}
	}
	if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil {
		return fmt.Errorf("dropping ambient capabilities: %w", err)
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return fmt.Errorf("reading capabilities: %w", err)
	}
	// What this thread holds, less what the sandbox drops: an init that is
	// not root in its user namespace holds only the few it needs.
	for i := range data {
		keep := uint32(capMask >> (32 * i))
		data[i].Effective &= keep
		data[i].Permitted &= keep
		data[i].Inheritable = 0
	}
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return fmt.Errorf("dropping capabilities: %w", err)
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("setting no_new_privs: %w", err)
	}
	if len(filter) == 0 {
		return nil
	}
	prog := unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}
	_, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, 0, uintptr(unsafe.Pointer(&prog)))
	runtime.KeepAlive(filter)
	if errno != 0 {
		return fmt.Errorf("installing the seccomp filter: %w", errno)
	}
	return nil
}

// lastCapability is the highest capability number the kernel knows.
func lastCapability() (int, error) {
	b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap")
	if err != nil {
		return 0, fmt.Errorf("reading the last capability: %w", err)
	}
	var n int
	if _, err := fmt.Sscan(string(b), &n); err != nil || n < 0 || n > 63 {
		return 0, fmt.Errorf("reading the last capability: %q", b)
	}
	return n, nil
}

// defaultConfinement is DefaultSandbox with its capability mask and
// seccomp filter, assembled before a run starts, so that a faulty profile
// fails it there.
func defaultConfinement() (*Sandbox, uint64, []unix.SockFilter, error) {
	sb := DefaultSandbox()
	capMask, err := sb.capabilityMask()
	if err != nil {
		return nil, 0, nil, err
	}
	filter, err := sb.filter()
	if err != nil {
		return nil, 0, nil, err
	}
	return sb, capMask, sockFilters(filter), nil
}
