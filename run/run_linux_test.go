package run

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sys/unix"
)

// probeInfo is what testdata/probe reports.
type probeInfo struct {
	UID      int      `json:"uid"`
	GID      int      `json:"gid"`
	Groups   []int    `json:"groups"`
	Cwd      string   `json:"cwd"`
	PID      int      `json:"pid"`
	PPID     int      `json:"ppid"`
	Hostname string   `json:"hostname"`
	Env      []string `json:"env"`
	PIDNS    string   `json:"pidns"`
	RootFS   string   `json:"rootfs"`
	TmpMode  string   `json:"tmpMode"`
	Hosts    string   `json:"hosts"`
	DevNull  bool     `json:"devNull"`
}

// probeImage is the probe layer with cfg; Entrypoint is "probe", found
// through the image's PATH.
func probeImage(t *testing.T, cfg v1.Config) v1.Image {
	t.Helper()
	cfg.Entrypoint = []string{"probe"}
	cfg.Env = append([]string{"PATH=/usr/local/bin:/usr/bin:/bin"}, cfg.Env...)
	return withLayers(t, cfg, probeLayer)
}

// syncBuffer is a bytes.Buffer that a test may read while a run writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// withUserNS forces the user namespace path, which non-root callers take.
func withUserNS() Option {
	return func(o *options) { o.userNS = true }
}

func TestImageConfig(t *testing.T) {
	requireNamespaces(t)
	hostNS, err := os.Readlink("/proc/self/ns/pid")
	if err != nil {
		t.Fatal(err)
	}
	type want struct {
		UID, GID int
		Groups   []int // nil: not checked
		Cwd      string
		Env      []string // must be present
	}
	tests := []struct {
		name string
		cfg  v1.Config
		opts []Option
		want want
	}{{
		name: "defaults",
		want: want{UID: 0, GID: 0, Groups: []int{}, Cwd: "/", Env: []string{"HOME=/root", "PATH=/usr/local/bin:/usr/bin:/bin"}},
	}, {
		name: "user by name, missing workdir",
		cfg:  v1.Config{User: "app", WorkingDir: "/srv/fn"},
		want: want{UID: 1000, GID: 1000, Groups: []int{2000}, Cwd: "/srv/fn", Env: []string{"HOME=/home/app"}},
	}, {
		name: "numeric user and group",
		cfg:  v1.Config{User: "1000:2000", WorkingDir: "/tmp"},
		want: want{UID: 1000, GID: 2000, Groups: []int{}, Cwd: "/tmp"},
	}, {
		name: "numeric user not in passwd",
		cfg:  v1.Config{User: "4242"},
		want: want{UID: 4242, GID: 0, Groups: []int{}, Cwd: "/", Env: []string{"HOME=/"}},
	}, {
		name: "env: options win over the image",
		cfg:  v1.Config{Env: []string{"FROM_IMAGE=yes", "OVERRIDE=image", "port=1"}},
		opts: []Option{WithEnv([]string{"OVERRIDE=option"}), WithPort(9999)},
		want: want{Cwd: "/", Groups: []int{}, Env: []string{"FROM_IMAGE=yes", "OVERRIDE=option", "port=9999"}},
	}, {
		name: "user namespace, root",
		opts: []Option{withUserNS()},
		want: want{UID: 0, GID: 0, Cwd: "/"},
	}, {
		name: "user namespace, user by name",
		cfg:  v1.Config{User: "app", WorkingDir: "/home/app"},
		opts: []Option{withUserNS()},
		want: want{UID: 1000, GID: 1000, Cwd: "/home/app"},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.cfg.Cmd = []string{"info"}
			img := probeImage(t, tc.cfg)
			d, err := img.Digest()
			if err != nil {
				t.Fatal(err)
			}
			var stdout, stderr bytes.Buffer
			opts := append([]Option{WithCacheDir(t.TempDir()), WithStdout(&stdout), WithStderr(&stderr)}, tc.opts...)
			if err := Image(context.Background(), img, opts...); err != nil {
				t.Fatalf("Image() = %v, stderr:\n%s", err, stderr.String())
			}
			var got probeInfo
			if err := json.Unmarshal(stdout.Bytes(), &got); err != nil {
				t.Fatalf("probe output %q: %v", stdout.String(), err)
			}
			gotIDs := want{UID: got.UID, GID: got.GID, Groups: got.Groups, Cwd: got.Cwd}
			wantIDs := tc.want
			wantIDs.Env = nil
			if wantIDs.Groups == nil || os.Geteuid() != 0 {
				// A user namespace maps one group only, and does not
				// allow setting supplementary groups.
				wantIDs.Groups, gotIDs.Groups = nil, nil
			}
			if diff := cmp.Diff(wantIDs, gotIDs, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("Image() ran as (-want +got):\n%s", diff)
			}
			for _, kv := range tc.want.Env {
				if !slices.Contains(got.Env, kv) {
					t.Errorf("Image() env = %v, want it to hold %s", got.Env, kv)
				}
			}
			hostname := d.Hex[:12]
			checks := []struct {
				what      string
				got, want any
			}{
				// Our init is PID 1 of the new namespace.
				{"parent pid", got.PPID, 1},
				{"pid namespace is the host's", got.PIDNS == hostNS, false},
				{"hostname", got.Hostname, hostname},
				{"HOSTNAME set", slices.Contains(got.Env, "HOSTNAME="+hostname), true},
				{"root filesystem", got.RootFS, "overlay"},
				{"/tmp mode", got.TmpMode, "dtrwxrwxrwx"},
				{"/etc/hosts names the host", strings.Contains(got.Hosts, "\t"+hostname), true},
				{"/dev/null is a device", got.DevNull, true},
			}
			for _, c := range checks {
				if c.got != c.want {
					t.Errorf("Image() %s = %v, want %v", c.what, c.got, c.want)
				}
			}
		})
	}
}

func TestImageLeavesCacheAlone(t *testing.T) {
	requireNamespaces(t)
	for _, userNS := range []bool{false, true} {
		t.Run(fmt.Sprintf("userns=%v", userNS), func(t *testing.T) {
			t.Parallel()
			cache := t.TempDir()
			img := probeImage(t, v1.Config{Cmd: []string{"write"}})
			var stdout, stderr bytes.Buffer
			opts := []Option{WithCacheDir(cache), WithStdout(&stdout), WithStderr(&stderr)}
			if userNS {
				opts = append(opts, withUserNS())
			}
			if err := Image(context.Background(), img, opts...); err != nil {
				t.Fatalf("Image() = %v, stderr:\n%s", err, stderr.String())
			}
			if got := strings.Count(stdout.String(), "probe-wrote"); got != 3 {
				t.Fatalf("probe wrote %q, want 3 files", stdout.String())
			}
			rootfs, err := Unpack(context.Background(), img, cache)
			if err != nil {
				t.Fatal(err)
			}
			for p, desc := range listTree(t, rootfs) {
				if strings.Contains(p, "probe-wrote") || p == "proc" || p == "dev" {
					t.Errorf("Image() changed the cached rootfs: %s %s", p, desc)
				}
				if p == "tmp" && desc != "drwxr-xr-x" {
					t.Errorf("Image() changed the cached /tmp: %s", desc)
				}
			}
			if left, _ := os.ReadDir(filepath.Join(cache, "run")); len(left) != 0 {
				t.Errorf("Image() left scratch space %v", left)
			}
		})
	}
}

func TestImageExitStatus(t *testing.T) {
	requireNamespaces(t)
	tests := []struct {
		name    string
		cmd     []string
		want    error
		wantMsg string
	}{
		{"success", []string{"exit", "0"}, nil, ""},
		{"failure", []string{"exit", "3"}, &ExitError{Code: 3}, ""},
		{"unknown entrypoint", nil, nil, "not found in PATH"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			img := probeImage(t, v1.Config{Cmd: tc.cmd})
			if tc.cmd == nil {
				img = withLayers(t, v1.Config{Entrypoint: []string{"no-such-program"}}, probeLayer)
			}
			err := Image(context.Background(), img, WithCacheDir(t.TempDir()))
			var exit *ExitError
			switch {
			case tc.wantMsg != "":
				if err == nil || !strings.Contains(err.Error(), tc.wantMsg) {
					t.Errorf("Image() = %v, want an error with %q", err, tc.wantMsg)
				}
			case tc.want == nil:
				if err != nil {
					t.Errorf("Image() = %v, want nil", err)
				}
			case !errors.As(err, &exit) || *exit != *tc.want.(*ExitError):
				t.Errorf("Image() = %v, want %v", err, tc.want)
			}
		})
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// waitFor polls cond until it holds or the time is up.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestImageServesAndStops(t *testing.T) {
	requireNamespaces(t)
	token := fmt.Sprintf("kiln-run-test-serve-%d", time.Now().UnixNano())
	port := freePort(t)
	img := probeImage(t, v1.Config{Cmd: []string{"serve", token}, Env: []string{"port=1"}})
	var stdout, stderr syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- Image(ctx, img, WithCacheDir(t.TempDir()), WithPort(port), WithStdout(&stdout), WithStderr(&stderr))
	}()

	url := "http://127.0.0.1:" + strconv.Itoa(port) + "/"
	client := &http.Client{Timeout: time.Second}
	var got probeInfo
	waitFor(t, "probe answering on "+url, 15*time.Second, func() bool {
		select {
		case err := <-done:
			t.Fatalf("Image() = %v before serving, stderr:\n%s", err, stderr.String())
		default:
		}
		resp, err := client.Get(url)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		return json.NewDecoder(resp.Body).Decode(&got) == nil
	})
	if want := "port=" + strconv.Itoa(port); !slices.Contains(got.Env, want) {
		t.Errorf("served env = %v, want it to hold %s", got.Env, want)
	}
	waitFor(t, "sleeper started", 5*time.Second, func() bool { return len(processesWith(t, token)) == 2 })

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Image() = %v after cancel, want nil", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Image() did not return after cancel")
	}
	for _, line := range []string{"probe: SIGTERM", "probe: clean exit"} {
		if !strings.Contains(stdout.String(), line) {
			t.Errorf("Image() stdout = %q, want %q", stdout.String(), line)
		}
	}
	if left := processesWith(t, token); len(left) != 0 {
		t.Errorf("Image() left processes behind: %v", left)
	}
}

func TestImageLeavesNoProcess(t *testing.T) {
	requireNamespaces(t)
	t.Run("orphan of an entrypoint that exits", func(t *testing.T) {
		t.Parallel()
		token := fmt.Sprintf("kiln-run-test-spawn-%d", time.Now().UnixNano())
		img := probeImage(t, v1.Config{Cmd: []string{"spawn", token}})
		var stdout bytes.Buffer
		if err := Image(context.Background(), img, WithCacheDir(t.TempDir()), WithStdout(&stdout)); err != nil {
			t.Fatalf("Image() = %v", err)
		}
		if !strings.Contains(stdout.String(), "spawned") {
			t.Fatalf("Image() stdout = %q, want spawned", stdout.String())
		}
		if left := processesWith(t, token); len(left) != 0 {
			t.Errorf("Image() left processes behind: %v", left)
		}
	})
	t.Run("entrypoint that ignores SIGTERM", func(t *testing.T) {
		t.Parallel()
		token := fmt.Sprintf("kiln-run-test-stubborn-%d", time.Now().UnixNano())
		img := probeImage(t, v1.Config{Cmd: []string{"stubborn", token}})
		var stdout syncBuffer
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		done := make(chan error, 1)
		const grace = 300 * time.Millisecond
		go func() {
			done <- Image(ctx, img, WithCacheDir(t.TempDir()), WithStdout(&stdout), WithGracePeriod(grace))
		}()
		waitFor(t, "probe ignoring SIGTERM", 15*time.Second, func() bool {
			return strings.Contains(stdout.String(), "ignoring SIGTERM")
		})
		start := time.Now()
		cancel()
		select {
		case err := <-done:
			if err == nil || !strings.Contains(err.Error(), "killed") {
				t.Errorf("Image() = %v, want killed after the grace period", err)
			}
			if took := time.Since(start); took < grace || took > grace+5*time.Second {
				t.Errorf("Image() returned %s after cancel, want about %s", took, grace)
			}
		case <-time.After(15 * time.Second):
			t.Fatal("Image() did not return after cancel")
		}
		if left := processesWith(t, token); len(left) != 0 {
			t.Errorf("Image() left processes behind: %v", left)
		}
	})
}

// TestImageCacheOnOverlay covers kiln itself running in a container, where
// the cache is on overlayfs, which overlayfs refuses as an upper layer.
func TestImageCacheOnOverlay(t *testing.T) {
	requireNamespaces(t)
	if os.Geteuid() != 0 {
		t.Skip("mounting the test's overlay needs root")
	}
	dir := t.TempDir()
	for _, d := range []string{"lower", "upper", "work", "mnt"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	mnt := filepath.Join(dir, "mnt")
	opts := fmt.Sprintf("lowerdir=%s/lower,upperdir=%s/upper,workdir=%s/work", dir, dir, dir)
	if err := unix.Mount("overlay", mnt, "overlay", 0, opts); err != nil {
		t.Skipf("cannot mount an overlay for the test: %v", err)
	}
	t.Cleanup(func() { _ = unix.Unmount(mnt, unix.MNT_DETACH) })

	img := probeImage(t, v1.Config{Cmd: []string{"write"}})
	var stderr bytes.Buffer
	if err := Image(context.Background(), img, WithCacheDir(mnt), WithStderr(&stderr)); err != nil {
		t.Fatalf("Image() = %v, stderr:\n%s", err, stderr.String())
	}
	if left, _ := os.ReadDir(filepath.Join(mnt, "run")); len(left) != 0 {
		t.Errorf("Image() left scratch space %v", left)
	}
}
