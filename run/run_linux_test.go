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
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sys/unix"
)

// probeInfo is what testdata/probe reports.
type probeInfo struct {
	UID         int      `json:"uid"`
	GID         int      `json:"gid"`
	Groups      []int    `json:"groups"`
	Cwd         string   `json:"cwd"`
	PID         int      `json:"pid"`
	PPID        int      `json:"ppid"`
	Hostname    string   `json:"hostname"`
	Env         []string `json:"env"`
	PIDNS       string   `json:"pidns"`
	RootFS      string   `json:"rootfs"`
	TmpMode     string   `json:"tmpMode"`
	Hosts       string   `json:"hosts"`
	EtcHostname string   `json:"etcHostname"`
	DevNull     bool     `json:"devNull"`
	Resolv      string   `json:"resolv"`
	NetNS       string   `json:"netns"`
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

// withoutShift makes root run without a user namespace, as on a cache
// without idmapped mounts.
func withoutShift() Option {
	return func(o *options) { o.noShift = true }
}

func TestImageConfig(t *testing.T) {
	requireNamespaces(t)
	hostNetNS, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
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
		opts: []Option{WithEnv([]string{"OVERRIDE=option", "port=9999"})},
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
				{"network namespace is the host's", got.NetNS == hostNetNS, false},
				{"hostname", got.Hostname, hostname},
				{"HOSTNAME set", slices.Contains(got.Env, "HOSTNAME="+hostname), true},
				{"root filesystem", got.RootFS, "overlay"},
				{"/tmp mode", got.TmpMode, "dtrwxrwxrwx"},
				{"/etc/hosts names the run", strings.Contains(got.Hosts, slirpGuest+"\t"+hostname+"\n"), true},
				{"/etc/hosts names the host", strings.Contains(got.Hosts, slirpHost+"\thost.kiln.internal "), true},
				{"resolv.conf names slirp4netns's resolver", strings.HasPrefix(got.Resolv, "nameserver "+slirpDNS+"\n"), true},
				{"/etc/hostname", got.EtcHostname, hostname + "\n"},
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
			for _, layer := range rootfs.paths() {
				checkUntouched(t, layer)
			}
			if left, _ := os.ReadDir(filepath.Join(cache, "run")); len(left) != 0 {
				t.Errorf("Image() left scratch space %v", left)
			}
		})
	}
}

// checkUntouched checks that a cached layer holds none of what a run of the
// probe writes or mounts.
func checkUntouched(t *testing.T, layer string) {
	t.Helper()
	for p, desc := range listTree(t, layer) {
		if strings.Contains(p, "probe-wrote") || p == "proc" || p == "dev" {
			t.Errorf("Image() changed the cached rootfs: %s %s", p, desc)
		}
		if p == "tmp" && desc != "drwxr-xr-x" {
			t.Errorf("Image() changed the cached /tmp: %s", desc)
		}
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

// listenLoopback is a listener on a free loopback port, closed when the
// test ends.
func listenLoopback(t *testing.T) *net.TCPListener {
	t.Helper()
	l, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
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
	l := listenLoopback(t)
	img := probeImage(t, v1.Config{Cmd: []string{"serve", token}, Env: []string{"port=8080"}})
	var stdout, stderr syncBuffer
	var started atomic.Int64 // the init's pid, which WithStarted reports
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- Image(ctx, img, WithCacheDir(t.TempDir()), WithPublish(l, 8080), WithStdout(&stdout), WithStderr(&stderr), WithStarted(func(pid int) { started.Store(int64(pid)) }))
	}()

	url := "http://" + l.Addr().String() + "/"
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
	if want := "port=8080"; !slices.Contains(got.Env, want) {
		t.Errorf("served env = %v, want it to hold %s", got.Env, want)
	}
	waitFor(t, "sleeper started", 5*time.Second, func() bool { return len(processesWith(t, token)) == 2 })
	// Both processes descend from the pid WithStarted reported.
	for _, p := range processesWith(t, token) {
		pid, _ := strconv.Atoi(strings.SplitN(p, ":", 2)[0])
		if !descendsFrom(pid, int(started.Load())) {
			t.Errorf("process %s does not descend from WithStarted's pid %d", p, started.Load())
		}
	}

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

// TestImageStackedView runs a probe that lists a tree built by two layers,
// the upper one with whiteouts and opaque directories: the run must see what
// the flattened image holds, with the user namespace (user.* attributes) and
// without (trusted.*).
func TestImageStackedView(t *testing.T) {
	requireNamespaces(t)
	lower := []entry{
		fileEntry("t/a/x", 0o644, "x"),
		fileEntry("t/a/y", 0o644, "y"),
		fileEntry("t/b/z", 0o644, "z"),
		fileEntry("t/d/old", 0o644, "old"),
		fileEntry("t/d/sub/old", 0o644, "old"),
		fileEntry("t/e/kept", 0o644, "kept"),
		fileEntry("t/f", 0o644, "file"),
		fileEntry("t/g/old", 0o644, "old"),
		fileEntry("t/h/old", 0o644, "old"),
	}
	upper := []entry{
		whiteoutEntry("t/a/x"),
		whiteoutEntry("t/b"),
		dirEntry("t/d", 0o755),
		opaqueEntry("t/d"),
		fileEntry("t/d/new", 0o644, "new"),
		dirEntry("t/f", 0o755),
		fileEntry("t/f/in", 0o644, "now a dir"),
		// Deleted, then created again in the same layer.
		whiteoutEntry("t/g"),
		fileEntry("t/g/new", 0o644, "new"),
		whiteoutEntry("t/h"),
		dirEntry("t/h", 0o700),
	}
	l1, err := newLayer(lower...)
	if err != nil {
		t.Fatal(err)
	}
	l2, err := newLayer(upper...)
	if err != nil {
		t.Fatal(err)
	}
	img := withLayers(t, v1.Config{Entrypoint: []string{"/usr/local/bin/probe", "tree", "/t"}}, probeLayer, l1, l2)
	flatDir, err := flatten(context.Background(), img, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	want := listTree(t, filepath.Join(flatDir, "t"))
	for _, hidden := range []string{"a/x", "b", "d/old", "d/sub", "g/old", "h/old"} {
		if _, ok := want[hidden]; ok {
			t.Fatalf("flatten() kept %s", hidden)
		}
	}
	for _, userNS := range []bool{false, true} {
		t.Run(fmt.Sprintf("userns=%v", userNS), func(t *testing.T) {
			t.Parallel()
			var stdout, stderr bytes.Buffer
			opts := []Option{WithCacheDir(t.TempDir()), WithStdout(&stdout), WithStderr(&stderr)}
			if userNS {
				opts = append(opts, withUserNS())
			}
			if err := Image(context.Background(), img, opts...); err != nil {
				t.Fatalf("Image() = %v, stderr:\n%s", err, stderr.String())
			}
			var got map[string]string
			if err := json.Unmarshal(stdout.Bytes(), &got); err != nil {
				t.Fatalf("probe output %q: %v", stdout.String(), err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("Image() view of /t mismatch (-flattened +run):\n%s", diff)
			}
		})
	}
}

func TestImageMounts(t *testing.T) {
	requireNamespaces(t)
	host := t.TempDir()
	secret := filepath.Join(host, "secret")
	if err := os.WriteFile(secret, []byte("s3cret"), 0o644); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(host, "data")
	if err := os.Mkdir(data, 0o777); err != nil {
		t.Fatal(err)
	}
	// outside stands for the rest of the machine, which an image's symlink
	// names: nothing may appear in it.
	outside := t.TempDir()
	links, err := newLayer(symlinkEntry("evil", outside), symlinkEntry("top", "/"), symlinkEntry("etc/secrets", "/var/openfaas/secrets"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		mounts  []Mount
		cmd     []string
		userNS  bool
		want    string // stdout
		wantErr string // in Image's error, or "exit" for an *ExitError
	}{{
		name:   "read-only file, missing parents",
		mounts: []Mount{{Source: secret, Target: "/var/openfaas/secrets/token", ReadOnly: true}},
		cmd:    []string{"cat", "/var/openfaas/secrets/token"},
		want:   "s3cret",
	}, {
		name:    "read-only file refuses writes",
		mounts:  []Mount{{Source: secret, Target: "/var/openfaas/secrets/token", ReadOnly: true}},
		cmd:     []string{"append", "/var/openfaas/secrets/token"},
		wantErr: "exit",
	}, {
		name:    "read-only file refuses writes, user namespace",
		mounts:  []Mount{{Source: secret, Target: "/var/openfaas/secrets/token", ReadOnly: true}},
		cmd:     []string{"append", "/var/openfaas/secrets/token"},
		userNS:  true,
		wantErr: "exit",
	}, {
		name:   "read-only file, user namespace",
		mounts: []Mount{{Source: secret, Target: "/var/openfaas/secrets/token", ReadOnly: true}},
		cmd:    []string{"cat", "/etc/secrets/token"},
		userNS: true,
		want:   "s3cret",
	}, {
		name:   "writable dir",
		mounts: []Mount{{Source: data, Target: "/data"}},
		cmd:    []string{"append", "/data/written"},
	}, {
		name:   "target through a symlink to the host stays inside",
		mounts: []Mount{{Source: data, Target: "/evil/data"}},
		cmd:    []string{"append", filepath.Join(outside, "data/inside")},
	}, {
		name:    "target on the root",
		mounts:  []Mount{{Source: data, Target: "/"}},
		cmd:     []string{"exit", "0"},
		wantErr: "would hide the image",
	}, {
		name:    "target on the root through a symlink",
		mounts:  []Mount{{Source: data, Target: "/top"}},
		cmd:     []string{"exit", "0"},
		wantErr: "root of the image",
	}, {
		name:    "file on a directory",
		mounts:  []Mount{{Source: secret, Target: "/tmp"}},
		cmd:     []string{"exit", "0"},
		wantErr: "cannot be bound",
	}, {
		name:    "missing source",
		mounts:  []Mount{{Source: filepath.Join(host, "missing"), Target: "/x"}},
		cmd:     []string{"exit", "0"},
		wantErr: "mount source",
	}, {
		name:    "relative target",
		mounts:  []Mount{{Source: data, Target: "data"}},
		cmd:     []string{"exit", "0"},
		wantErr: "absolute path",
	}}
	tests = append(tests, []struct {
		name    string
		mounts  []Mount
		cmd     []string
		userNS  bool
		want    string
		wantErr string
	}{
		{name: "read-only root refuses writes", cmd: []string{"append", "/written"}, wantErr: "exit"},
		{name: "read-only root refuses writes, user namespace", cmd: []string{"append", "/written"}, userNS: true, wantErr: "exit"},
		{name: "read-only root, /tmp writable", cmd: []string{"append", "/tmp/written"}},
		{name: "read-only root, mounts writable", mounts: []Mount{{Source: data, Target: "/data"}}, cmd: []string{"append", "/data/ro-root"}, userNS: true},
	}...)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			img := withLayers(t, v1.Config{Entrypoint: []string{"/usr/local/bin/probe"}, Cmd: tc.cmd}, probeLayer, links)
			var stdout, stderr bytes.Buffer
			opts := []Option{WithCacheDir(t.TempDir()), WithStdout(&stdout), WithStderr(&stderr), WithMounts(tc.mounts)}
			if tc.userNS {
				opts = append(opts, withUserNS())
			}
			if strings.HasPrefix(tc.name, "read-only root") {
				opts = append(opts, WithReadOnlyRoot())
			}
			err := Image(context.Background(), img, opts...)
			var exit *ExitError
			switch {
			case tc.wantErr == "exit":
				if !errors.As(err, &exit) {
					t.Errorf("Image() = %v, want an *ExitError; stdout %q", err, stdout.String())
				}
			case tc.wantErr != "":
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("Image() = %v, want an error with %q", err, tc.wantErr)
				}
			case err != nil:
				t.Fatalf("Image() = %v, stderr:\n%s", err, stderr.String())
			case stdout.String() != tc.want:
				t.Errorf("Image() stdout = %q, want %q", stdout.String(), tc.want)
			}
			if left, _ := os.ReadDir(outside); len(left) != 0 {
				t.Errorf("Image() wrote %v outside the rootfs", left)
			}
		})
	}
	if b, err := os.ReadFile(filepath.Join(data, "written")); err != nil || string(b) != "appended\n" {
		t.Errorf("writable mount: host file = %q, %v, want %q", b, err, "appended\n")
	}
	if b, err := os.ReadFile(filepath.Join(data, "inside")); err != nil || string(b) != "appended\n" {
		t.Errorf("mount through a symlink: host file = %q, %v, want %q", b, err, "appended\n")
	}
	if b, err := os.ReadFile(secret); err != nil || string(b) != "s3cret" {
		t.Errorf("read-only mount: host file = %q, %v, want unchanged", b, err)
	}
}

// TestImageManyLayers covers the limit of the overlay mount's options: up to
// maxStacked layers are stacked, and the mount takes them; more are
// flattened.
func TestImageManyLayers(t *testing.T) {
	requireNamespaces(t)
	for _, n := range []int{maxStacked, maxStacked + 1} {
		t.Run(strconv.Itoa(n), func(t *testing.T) {
			t.Parallel()
			ls := []v1.Layer{probeLayer}
			for i := range n - 1 {
				l, err := newLayer(fileEntry("layer", 0o644, strconv.Itoa(i)))
				if err != nil {
					t.Fatal(err)
				}
				ls = append(ls, l)
			}
			img := withLayers(t, v1.Config{Entrypoint: []string{"/usr/local/bin/probe", "cat", "/layer"}}, ls...)
			cache := t.TempDir()
			r, err := Unpack(context.Background(), img, cache)
			if err != nil {
				t.Fatalf("Unpack() = %v", err)
			}
			wantLowers := n
			if n > maxStacked {
				wantLowers = 1
			}
			if len(r.Layers) != wantLowers {
				t.Errorf("Unpack() = %d lower dirs, want %d", len(r.Layers), wantLowers)
			}
			var stdout, stderr bytes.Buffer
			if err := Image(context.Background(), img, WithCacheDir(cache), WithStdout(&stdout), WithStderr(&stderr), withUserNS()); err != nil {
				t.Fatalf("Image() = %v, stderr:\n%s", err, stderr.String())
			}
			if want := strconv.Itoa(n - 2); stdout.String() != want {
				t.Errorf("Image() read /layer = %q, want %q (the top layer's)", stdout.String(), want)
			}
		})
	}
}
