package run

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Each run has a network namespace of its own, as a pod has: its ports
// never clash with another run's, and it reaches the host only as a
// container does. slirp4netns, where installed, gives it outbound network
// through a user-mode TCP/IP stack (as rootless Podman does), which needs no
// privilege and leaves the host's interfaces, routes and firewall alone; it
// also forwards slirpHost to the host's loopback and slirpDNS to the host's
// resolver, loopback resolvers included. Published ports do not go through
// it: the init accepts on listeners kiln opened on the host and dials the
// function on the namespace's loopback.
const (
	slirpCIDR  = "10.0.2.0/24"
	slirpGuest = "10.0.2.100"
	slirpHost  = "10.0.2.2"
	slirpDNS   = "10.0.2.3"
)

// networkReadyTimeout bounds slirp4netns's start.
const networkReadyTimeout = 10 * time.Second

// ErrNoNetwork is what a run lacks when slirp4netns is not installed, or
// fails: Image still runs it, and writes why on the run's stderr.
var ErrNoNetwork = errors.New("the function has no network beyond its own loopback and published ports")

// network is a run's slirp4netns, serving its namespace until stop.
type network struct {
	cmd    *exec.Cmd
	exitW  *os.File
	stderr bytes.Buffer
}

// startNetwork connects the network namespace of the init pid to the
// outside through slirp4netns, the executable bin, and waits until it is
// configured. userNS says the namespace belongs to a user namespace the
// caller may join but has no privilege over from outside, as when kiln
// does not run as root.
func startNetwork(ctx context.Context, bin string, pid int, userNS bool) (*network, error) {
	readyR, readyW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("starting slirp4netns: %w", err)
	}
	defer readyR.Close()
	defer readyW.Close()
	exitR, exitW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("starting slirp4netns: %w", err)
	}
	defer exitR.Close()
	args := []string{
		"--configure", "--mtu=65520", "--cidr=" + slirpCIDR,
		"--ready-fd=3", "--exit-fd=4",
		// A syscall filter: it parses the function's packets.
		"--enable-seccomp",
	}
	if userNS {
		args = append(args, "--userns-path=/proc/"+strconv.Itoa(pid)+"/ns/user")
	} else {
		// Its own empty root, and no capabilities. (Without root, its
		// sandbox cannot set its ids, and it has no privileges to drop.)
		args = append(args, "--enable-sandbox")
	}
	args = append(args, "--netns-type=path", "/proc/"+strconv.Itoa(pid)+"/ns/net", "tap0")
	n := &network{exitW: exitW}
	n.cmd = exec.Command(bin, args...)
	n.cmd.ExtraFiles = []*os.File{readyW, exitR}
	n.cmd.Stderr = &limitedWriter{w: &n.stderr, n: 4096}
	n.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := n.cmd.Start(); err != nil {
		exitW.Close()
		return nil, fmt.Errorf("starting slirp4netns: %w", err)
	}
	readyW.Close()
	exitR.Close()
	ready := make(chan error, 1)
	go func() {
		b := make([]byte, 1)
		_, err := readyR.Read(b)
		ready <- err
	}()
	timer := time.NewTimer(networkReadyTimeout)
	defer timer.Stop()
	select {
	case err = <-ready:
	case <-ctx.Done():
		err = ctx.Err()
	case <-timer.C:
		err = fmt.Errorf("not ready after %s", networkReadyTimeout)
	}
	if err != nil {
		n.stop()
		if msg := strings.TrimSpace(n.stderr.String()); msg != "" {
			err = fmt.Errorf("%w: %s", err, lastLine(msg))
		}
		return nil, fmt.Errorf("connecting the run's network with slirp4netns: %w", err)
	}
	return n, nil
}

// stop ends slirp4netns and waits for it, and so for its stderr. It is
// killed outright: the run's namespace is gone, or never came up, so it
// has nothing left to do (on its exit fd alone it lingers some 30 ms).
func (n *network) stop() {
	n.exitW.Close()
	_ = n.cmd.Process.Kill()
	_ = n.cmd.Wait()
}

// end is stop for a run that is over, without waiting: the kernel takes
// some 15 ms to tear down the tap device of a killed slirp4netns, which a
// build step would pay each time. It is reaped meanwhile.
func (n *network) end() {
	n.exitW.Close()
	_ = n.cmd.Process.Kill()
	go n.cmd.Wait()
}

func lastLine(s string) string {
	return s[strings.LastIndexByte(s, '\n')+1:]
}

// syncWriter serialises writes to w.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// limitedWriter keeps the first n bytes written to it and drops the rest.
type limitedWriter struct {
	w io.Writer
	n int
}

func (l *limitedWriter) Write(p []byte) (int, error) {
	if l.n > 0 {
		k := min(len(p), l.n)
		l.n -= k
		_, _ = l.w.Write(p[:k])
	}
	return len(p), nil
}

// loopbackUp brings up the loopback interface of the init's new network
// namespace, which starts down.
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("bringing up loopback: %w", err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return fmt.Errorf("bringing up loopback: %w", err)
	}
	ifr.SetUint16(unix.IFF_UP | unix.IFF_LOOPBACK | unix.IFF_RUNNING)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("bringing up loopback: %w", err)
	}
	return nil
}

// publish serves port of the namespace's loopback on each listener, which
// kiln opened on the host: every connection accepted there is joined to one
// made here. It returns at once; the forwarding lasts as long as the init.
func publish(fds []int, ports []int) error {
	for i, fd := range fds {
		f := os.NewFile(uintptr(fd), "publish")
		l, err := net.FileListener(f)
		f.Close()
		if err != nil {
			return fmt.Errorf("publishing port %d: %w", ports[i], err)
		}
		go forward(l, net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[i])))
	}
	return nil
}

func forward(l net.Listener, target string) {
	for {
		c, err := l.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return
		}
		go join(c, target)
	}
}

// join copies between c and a new connection to target, each way until
// its end, so a client's half-close reaches the function.
func join(c net.Conn, target string) {
	defer c.Close()
	u, err := net.Dial("tcp", target)
	if err != nil {
		// As a closed port: the client sees its connection reset.
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetLinger(0)
		}
		return
	}
	defer u.Close()
	done := make(chan struct{})
	go func() {
		_, _ = io.Copy(u, c)
		_ = u.(*net.TCPConn).CloseWrite()
		close(done)
	}()
	_, _ = io.Copy(c, u)
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.CloseWrite()
	}
	<-done
}

// etcHosts is the run's /etc/hosts, as a container runtime writes it: the
// loopback names, the run's own name, and the host's under HostAliases
// when the run has network; extra maps further names to the host.
func etcHosts(hostname string, networked bool, extra []string) []byte {
	var b bytes.Buffer
	b.WriteString("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n")
	self := "127.0.0.1"
	if networked {
		self = slirpGuest
	}
	// Some runtimes (Java's InetAddress.getLocalHost) fail when the
	// hostname does not resolve.
	fmt.Fprintf(&b, "%s\t%s\n", self, hostname)
	if networked {
		fmt.Fprintf(&b, "%s\t%s\n", slirpHost, strings.Join(append(HostAliases[:len(HostAliases):len(HostAliases)], extra...), " "))
	}
	return b.Bytes()
}

// resolvConf is the run's /etc/resolv.conf: with network, slirp4netns's
// resolver (which asks the host's, so a loopback resolver of the host keeps
// working) and the host's search domains and options; without, the host's
// file, which it cannot use but keeps its search domains.
func resolvConf(host []byte, networked bool) []byte {
	if !networked {
		return host
	}
	var b bytes.Buffer
	b.WriteString("nameserver " + slirpDNS + "\n")
	for line := range strings.Lines(string(host)) {
		f := strings.Fields(line)
		if len(f) > 0 && (f[0] == "search" || f[0] == "domain" || f[0] == "options") {
			b.WriteString(strings.TrimRight(line, "\n") + "\n")
		}
	}
	return b.Bytes()
}
