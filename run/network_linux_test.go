package run

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// TestRunsHaveTheirOwnNetwork runs one image twice, both serving on the
// same port inside, each published on a port of its own: each answers for
// itself, as two pods would.
func TestRunsHaveTheirOwnNetwork(t *testing.T) {
	requireNamespaces(t)
	img := probeImage(t, v1.Config{Cmd: []string{"serve", "kiln-run-test-netns"}, Env: []string{"port=8080"}})
	cache := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var listeners []*net.TCPListener
	done := make(chan error, 2)
	for i, userNS := range []bool{false, true} {
		l := listenLoopback(t)
		listeners = append(listeners, l)
		opts := []Option{WithCacheDir(cache), WithPublish(l, 8080), WithEnv([]string{fmt.Sprintf("RUN=%d", i)})}
		if userNS {
			opts = append(opts, withUserNS())
		}
		go func() { done <- Image(ctx, img, opts...) }()
	}
	client := &http.Client{Timeout: time.Second}
	for i, l := range listeners {
		url := "http://" + l.Addr().String() + "/"
		var got probeInfo
		waitFor(t, "run "+fmt.Sprint(i)+" answering on "+url, 15*time.Second, func() bool {
			resp, err := client.Get(url)
			if err != nil {
				return false
			}
			defer resp.Body.Close()
			return json.NewDecoder(resp.Body).Decode(&got) == nil
		})
		if want := fmt.Sprintf("RUN=%d", i); !slices.Contains(got.Env, want) {
			t.Errorf("run %d answered with env %v, want it to hold %s", i, got.Env, want)
		}
	}
	cancel()
	for range listeners {
		if err := <-done; err != nil {
			t.Errorf("Image() = %v", err)
		}
	}
}

// TestRunReachesHostLoopback checks that a run reaches a service on the
// host's loopback under each of HostAliases and the names WithHostNames
// adds, through slirp4netns.
func TestRunReachesHostLoopback(t *testing.T) {
	requireNamespaces(t)
	host := listenLoopback(t)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "host says hello to "+r.Host)
	})}
	go srv.Serve(host)
	// Not deferred: the parallel subtests run after this function returns.
	t.Cleanup(func() { srv.Close() })
	port := host.Addr().(*net.TCPAddr).Port
	names := append(slices.Clone(HostAliases), "gateway.openfaas")
	for _, name := range names {
		for _, userNS := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/userns=%v", name, userNS), func(t *testing.T) {
				t.Parallel()
				hostport := fmt.Sprintf("%s:%d", name, port)
				img := probeImage(t, v1.Config{Cmd: []string{"get", "http://" + hostport + "/"}})
				var stdout, stderr bytes.Buffer
				opts := []Option{WithCacheDir(t.TempDir()), WithStdout(&stdout), WithStderr(&stderr), WithHostNames("gateway", "gateway.openfaas")}
				if userNS {
					opts = append(opts, withUserNS())
				}
				if err := Image(context.Background(), img, opts...); err != nil {
					t.Fatalf("Image() = %v, stderr:\n%s", err, stderr.String())
				}
				if want := "host says hello to " + hostport; stdout.String() != want {
					t.Errorf("the run got %q from the host, want %q", stdout.String(), want)
				}
			})
		}
	}
}

// TestRunWithoutSlirp4netns: without slirp4netns, a run still starts, on
// its loopback alone, and says why it has no network.
func TestRunWithoutSlirp4netns(t *testing.T) {
	requireNamespaces(t)
	t.Setenv("PATH", t.TempDir())
	img := probeImage(t, v1.Config{Cmd: []string{"info"}})
	var stdout, stderr bytes.Buffer
	if err := Image(context.Background(), img, WithCacheDir(t.TempDir()), WithStdout(&stdout), WithStderr(&stderr), WithHostNames("gateway")); err != nil {
		t.Fatalf("Image() = %v, stderr:\n%s", err, stderr.String())
	}
	if want := "kiln: slirp4netns not found (install slirp4netns): " + ErrNoNetwork.Error() + "\n"; stderr.String() != want {
		t.Errorf("stderr = %q, want %q", stderr.String(), want)
	}
	var got probeInfo
	if err := json.Unmarshal(stdout.Bytes(), &got); err != nil {
		t.Fatalf("probe output %q: %v", stdout.String(), err)
	}
	if strings.Contains(got.Hosts, "host.kiln.internal") || strings.Contains(got.Hosts, "gateway") {
		t.Errorf("/etc/hosts without network names the host:\n%s", got.Hosts)
	}
	if !strings.Contains(got.Hosts, "127.0.0.1\t"+got.Hostname+"\n") {
		t.Errorf("/etc/hosts does not name the run on loopback:\n%s", got.Hosts)
	}
}

func TestResolvConf(t *testing.T) {
	tests := []struct {
		name      string
		host      string
		networked bool
		want      string
	}{
		{"loopback resolver", "nameserver 127.0.0.53\noptions edns0 trust-ad\nsearch corp.example\n", true, "nameserver 10.0.2.3\noptions edns0 trust-ad\nsearch corp.example\n"},
		{"comments and several servers", "# generated\nnameserver 192.0.2.1\nnameserver 192.0.2.2\ndomain example.org", true, "nameserver 10.0.2.3\ndomain example.org\n"},
		{"empty", "", true, "nameserver 10.0.2.3\n"},
		{"no network: the host's", "nameserver 127.0.0.53\n", false, "nameserver 127.0.0.53\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := string(resolvConf([]byte(tc.host), tc.networked)); got != tc.want {
				t.Errorf("resolvConf() = %q, want %q", got, tc.want)
			}
		})
	}
}
