//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/net/dns/dnsmessage"
)

// TestRunNetwork runs one image twice with `kiln run`, as a pod per run:
// both serve the watchdog's 8080 and the function's 8082 inside, each on
// its own published port, and each answers for itself. Inside, the host's
// loopback services are reachable as host.kiln.internal, and names
// resolve through the host's resolver even when that is a loopback one
// (as systemd-resolved's is): here a DNS server of the test on
// 127.0.0.1:53, named in a resolv.conf that kiln sees in a mount namespace
// of its own.
func TestRunNetwork(t *testing.T) {
	needBinaries(t, "slirp4netns", "unshare")
	if os.Geteuid() != 0 {
		t.Skip("needs root, to give kiln a resolv.conf of its own with unshare -m")
	}
	const name, addr = "fn.kiln.test", "192.0.2.7"
	serveDNS(t, name, addr)
	resolv := filepath.Join(t.TempDir(), "resolv.conf")
	if err := os.WriteFile(resolv, []byte("nameserver 127.0.0.1\nsearch kiln.test\noptions ndots:1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	hostSrv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "the host answers on "+r.Host)
	})}
	hostL, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go hostSrv.Serve(hostL)
	t.Cleanup(func() { hostSrv.Close() })
	hostPort := hostL.Addr().(*net.TCPAddr).Port

	image := "kiln.local/e2e/net:v1"
	mustKiln(t, kilnOpts{cache: warmCache}, "build", sample("go-net"), "--lang", "go", "--image", image)
	ports := []int{freePort(t), freePort(t)}
	for i, port := range ports {
		// The function keeps the default ports inside: no two runs clash.
		cmd := kilnCommand(context.Background(), kilnOpts{cache: warmCache}, "run", image, "-p", strconv.Itoa(port), "--env", "RUN_ID=run-"+strconv.Itoa(i), "--env", "healthcheck_interval=1s")
		cmd.Args = append([]string{"unshare", "-m", "--propagation", "private", "sh", "-c", `mount --bind "$0" /etc/resolv.conf && exec "$@"`, resolv}, cmd.Args...)
		cmd.Path, err = exec.LookPath("unshare")
		if err != nil {
			t.Fatal(err)
		}
		p := startProcess(t, cmd)
		waitHealthy(t, p, port)
	}

	for i, port := range ports {
		tests := []struct {
			name, path, want string
		}{
			{"answers for itself", "/whoami", fmt.Sprintf("run-%d\n", i)},
			{"reaches the host's loopback", "/get?url=" + url.QueryEscape(fmt.Sprintf("http://host.kiln.internal:%d/", hostPort)), fmt.Sprintf("the host answers on host.kiln.internal:%d", hostPort)},
			{"resolves through the host's loopback resolver", "/lookup?host=" + name, addr + "\n"},
			{"keeps the host's search domains", "/lookup?host=fn", addr + "\n"},
		}
		for _, tc := range tests {
			t.Run(fmt.Sprintf("run %d %s", i, tc.name), func(t *testing.T) {
				a, err := call(http.MethodGet, port, tc.path, "")
				if err != nil || a.status != http.StatusOK || a.body != tc.want {
					r, _ := call(http.MethodGet, port, "/resolv", "")
					t.Errorf("GET %s = %d %q, %v; want 200 %q\nthe function's resolv.conf:\n%s", tc.path, a.status, a.body, err, tc.want, r.body)
				}
			})
		}
	}
	a, err := call(http.MethodGet, ports[0], "/resolv", "")
	if err != nil || !strings.HasPrefix(a.body, "nameserver 10.0.2.3\n") {
		t.Errorf("the function's resolv.conf = %q, %v; want slirp4netns's resolver first", a.body, err)
	}
}

// serveDNS answers A queries for name with addr, and every other query
// with NXDOMAIN, on 127.0.0.1:53 over UDP until the test ends.
func serveDNS(t *testing.T, name, addr string) {
	t.Helper()
	conn, err := net.ListenPacket("udp", "127.0.0.1:53")
	if err != nil {
		t.Fatalf("serving DNS on 127.0.0.1:53: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	ip := net.ParseIP(addr).To4()
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := conn.ReadFrom(buf)
			if err != nil {
				return
			}
			var p dnsmessage.Parser
			h, err := p.Start(buf[:n])
			if err != nil {
				continue
			}
			q, err := p.Question()
			if err != nil {
				continue
			}
			b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true})
			b.EnableCompression()
			found := strings.EqualFold(q.Name.String(), name+".")
			if !found {
				b = dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: h.ID, Response: true, RCode: dnsmessage.RCodeNameError})
			}
			_ = b.StartQuestions()
			_ = b.Question(q)
			if found && q.Type == dnsmessage.TypeA {
				_ = b.StartAnswers()
				_ = b.AResource(dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 60}, dnsmessage.AResource{A: [4]byte(ip)})
			}
			msg, err := b.Finish()
			if err == nil {
				_, _ = conn.WriteTo(msg, from)
			}
		}
	}()
}
