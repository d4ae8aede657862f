package run

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/internal/flock"
)

// stepBase is the probe layer under a layer with files to change.
func stepBase(t *testing.T) []v1.Layer {
	t.Helper()
	l, err := newLayer(
		dirEntry("data", 0o755),
		fileEntry("data/keep", 0o644, "keep"),
		fileEntry("data/gone", 0o644, "gone"),
		dirEntry("data/drop", 0o755),
		fileEntry("data/drop/f", 0o644, "f"),
		dirEntry("data/old", 0o755),
		fileEntry("data/old/a", 0o644, "a"),
		fileEntry("data/old/b", 0o644, "b"),
		dirEntry("run", 0o755),
	)
	if err != nil {
		t.Fatal(err)
	}
	return []v1.Layer{probeLayer, l}
}

// stepOptions runs steps with a cache of the test's own; out collects
// the command's output.
func stepOptions(t *testing.T, cacheDir string, out io.Writer) []Option {
	t.Helper()
	return []Option{WithCacheDir(cacheDir), WithStdout(out), WithStderr(out)}
}

// layerEntries lists a layer's entries: type, name, mode, owner, time
// and content or link target.
func layerEntries(t *testing.T, l v1.Layer) []string {
	t.Helper()
	rc, err := l.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var got []string
	tr := tar.NewReader(rc)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return got
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		desc := fmt.Sprintf("%c %s %o %d:%d %d", hdr.Typeflag, hdr.Name, hdr.Mode, hdr.Uid, hdr.Gid, hdr.ModTime.Unix())
		if len(b) > 0 {
			desc += " " + string(b)
		}
		if hdr.Linkname != "" {
			desc += " -> " + hdr.Linkname
		}
		got = append(got, desc)
	}
}

func probeStep(args ...string) StepSpec {
	return StepSpec{Args: append([]string{"probe"}, args...), Env: []string{"PATH=/usr/local/bin:/usr/bin:/bin"}}
}

func TestStepLayer(t *testing.T) {
	requireNamespaces(t)
	ctx := context.Background()
	epoch := time.Unix(1_600_000_000, 0)
	spec := probeStep("fs",
		"write", "/data/new", "new", ";",
		"rm", "/data/gone", ";", "rm", "/data/drop", ";",
		"link", "/data/keep", "/data/keep2", ";",
		"rm", "/data/old", ";", "mkdir", "/data/old", ";", "write", "/data/old/c", "c", ";",
		"mkdir", "/srv/app", ";", "write", "/srv/app/f", "f", ";", "link", "/srv/app/f", "/srv/app/g", ";",
		"symlink", "f", "/srv/app/s", ";",
		"chown", "1000:2000", "/srv/app/f", ";",
		// Docker binds these: a RUN's changes to them are not kept.
		"write", "/etc/hosts", "changed", ";", "rm", "/etc/resolv.conf")
	spec.Epoch = epoch
	e := epoch.Unix()
	want := []string{
		fmt.Sprintf("5 data/ 755 0:0 %d", e),
		fmt.Sprintf("0 data/.wh.drop 0 0:0 %d", e),
		fmt.Sprintf("0 data/.wh.gone 0 0:0 %d", e),
		// A hard link to a file of the layers below: both names.
		fmt.Sprintf("0 data/keep 644 0:0 %d keep", e),
		fmt.Sprintf("1 data/keep2 644 0:0 %d -> data/keep", e),
		fmt.Sprintf("0 data/new 644 0:0 %d new", e),
		fmt.Sprintf("5 data/old/ 755 0:0 %d", e),
		fmt.Sprintf("0 data/old/.wh..wh..opq 0 0:0 %d", e),
		fmt.Sprintf("0 data/old/c 644 0:0 %d c", e),
		fmt.Sprintf("5 srv/ 755 0:0 %d", e),
		fmt.Sprintf("5 srv/app/ 755 0:0 %d", e),
		fmt.Sprintf("0 srv/app/f 644 1000:2000 %d f", e),
		fmt.Sprintf("1 srv/app/g 644 1000:2000 %d -> srv/app/f", e),
		fmt.Sprintf("2 srv/app/s 777 0:0 %d -> f", e),
	}
	for name, opts := range stepModes(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var digests []v1.Hash
			// Twice, in caches of their own: a deterministic command
			// gives one layer.
			for range 2 {
				var out syncBuffer
				l, err := Step(ctx, stepBase(t), spec, append(stepOptions(t, t.TempDir(), &out), opts...)...)
				if err != nil {
					t.Fatalf("Step() = %v\n%s", err, out.String())
				}
				if diff := cmp.Diff(want, layerEntries(t, l)); diff != "" {
					t.Errorf("Step() layer entries (-want +got):\n%s", diff)
				}
				if err := validate.Layer(l); err != nil {
					t.Errorf("validate.Layer() = %v", err)
				}
				d, err := l.Digest()
				if err != nil {
					t.Fatal(err)
				}
				digests = append(digests, d)
			}
			if digests[0] != digests[1] {
				t.Errorf("Step() twice = layers %s and %s, want one digest", digests[0], digests[1])
			}
		})
	}
}

// stepModes are the ways a step runs: as root with the container's ids
// shifted (the default) or, on a cache without idmapped mounts, without a
// user namespace; without root, with the caller's subordinate ids.
func stepModes(t *testing.T) map[string][]Option {
	t.Helper()
	if os.Geteuid() != 0 {
		if _, err := lookupSubIDs("/etc/subuid", "/etc/subgid"); err != nil {
			t.Skipf("no subordinate ids: %v", err)
		}
		return map[string][]Option{"subordinate ids": nil}
	}
	return map[string][]Option{"shifted": nil, "unshifted": {withoutShift()}}
}

func TestStepConfig(t *testing.T) {
	requireNamespaces(t)
	ctx := context.Background()
	for name, opts := range stepModes(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			spec := probeStep("info")
			spec.Env = append(spec.Env, "GREETING=hello")
			spec.User = "app"
			spec.Workdir = "/srv/work"
			var out syncBuffer
			cacheDir := t.TempDir()
			l, err := Step(ctx, stepBase(t), spec, append(stepOptions(t, cacheDir, &out), opts...)...)
			if err != nil {
				t.Fatalf("Step() = %v\n%s", err, out.String())
			}
			var got probeInfo
			if err := json.Unmarshal([]byte(out.String()), &got); err != nil {
				t.Fatalf("probe info printed %q: %v", out.String(), err)
			}
			if got.UID != 1000 || got.GID != 1000 || got.Cwd != "/srv/work" || got.Hostname != stepHostname {
				t.Errorf("Step() ran as %d:%d in %s on %s, want 1000:1000 in /srv/work on %s", got.UID, got.GID, got.Cwd, got.Hostname, stepHostname)
			}
			for _, kv := range []string{"GREETING=hello", "HOME=/home/app", "HOSTNAME=" + stepHostname} {
				if !slices.Contains(got.Env, kv) {
					t.Errorf("Step() env = %q, want %s in it", got.Env, kv)
				}
			}
			// The working directory is the step's own, as with Docker.
			want := []string{"5 srv/ 755 0:0 0", "5 srv/work/ 755 0:0 0"}
			if diff := cmp.Diff(want, layerEntries(t, l)); diff != "" {
				t.Errorf("Step() layer entries (-want +got):\n%s", diff)
			}

			spec = probeStep("exit", "3")
			_, err = Step(ctx, stepBase(t), spec, append(stepOptions(t, cacheDir, &out), opts...)...)
			var exit *StepExitError
			if !errors.As(err, &exit) || exit.Code != 3 || err.Error() != `step "probe exit 3": exit code 3` {
				t.Errorf("Step(exit 3) = %v, want a *StepExitError naming exit code 3", err)
			}
		})
	}
}

func TestStepMounts(t *testing.T) {
	requireNamespaces(t)
	ctx := context.Background()
	host := t.TempDir()
	secret := filepath.Join(host, "token")
	if err := os.WriteFile(secret, []byte("s3cr3t"), 0o600); err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(host, "context")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "main.go"), []byte("package main"), 0o644); err != nil {
		t.Fatal(err)
	}
	stage, err := newLayer(dirEntry("out", 0o755), fileEntry("out/app", 0o755, "built"))
	if err != nil {
		t.Fatal(err)
	}
	for name, opts := range stepModes(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cacheDir := t.TempDir()
			mounts := []StepMount{
				// Another stage's tree, writable, its writes discarded.
				{Type: MountBind, From: []v1.Layer{probeLayer, stage}, Source: "/out", Target: "/stage", ReadWrite: true},
				{Type: MountSecret, ID: "token", Source: secret},
				// Its parents are missing: they leave no trace either.
				{Type: MountSecret, ID: "other", Source: secret, Target: "/etc/app/conf/token"},
				{Type: MountCache, Target: "/root/.cache/go-build"},
				{Type: MountBind, Source: src, Target: "/src"},
			}
			spec := StepSpec{Mounts: mounts}
			want := map[int]string{0: "s3cr3t", 1: "s3cr3t", 2: "package main", 5: "appended\nappended\n", 6: "built", 8: "built"}
			var out syncBuffer
			for i, args := range [][]string{
				{"cat", "/run/secrets/token"},
				{"cat", "/etc/app/conf/token"},
				{"cat", "/src/main.go"},
				{"append", "/root/.cache/go-build/log"},
				{"append", "/root/.cache/go-build/log"},
				{"cat", "/root/.cache/go-build/log"},
				{"cat", "/stage/app"},
				{"fs", "write", "/stage/app", "changed"},
				{"cat", "/stage/app"},
			} {
				out = syncBuffer{}
				spec.Args = append([]string{"probe"}, args...)
				l, err := Step(ctx, stepBase(t), spec, append(stepOptions(t, cacheDir, &out), opts...)...)
				if err != nil {
					t.Fatalf("Step(%q) = %v\n%s", args, err, out.String())
				}
				if got := layerEntries(t, l); len(got) != 0 {
					t.Errorf("Step(%q) layer = %q, want no trace of the mounts", args, got)
				}
				if w, ok := want[i]; ok && out.String() != w {
					t.Errorf("Step(%q) printed %q, want %q", args, out.String(), w)
				}
			}
			// Read-only, and so are secrets.
			spec.Args = []string{"probe", "fs", "write", "/src/new", "x"}
			if _, err := Step(ctx, stepBase(t), spec, append(stepOptions(t, cacheDir, io.Discard), opts...)...); err == nil {
				t.Errorf("Step(write into a bind mount) = nil, want an error")
			}
			spec.Args = []string{"probe", "fs", "write", "/run/secrets/token", "x"}
			if _, err := Step(ctx, stepBase(t), spec, append(stepOptions(t, cacheDir, io.Discard), opts...)...); err == nil {
				t.Errorf("Step(write a secret) = nil, want an error")
			}
		})
	}
}

// TestStepNetwork: a step reaches the network as Docker's RUN does (here,
// a service of the host's loopback, through slirp4netns) and an SSH agent
// bound from the host.
func TestStepNetwork(t *testing.T) {
	requireNamespaces(t)
	host := listenLoopback(t)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "host says hello")
	})}
	go srv.Serve(host)
	t.Cleanup(func() { srv.Close() })
	sock := filepath.Join(t.TempDir(), "agent.sock")
	agent, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { agent.Close() })
	go func() {
		for {
			c, err := agent.Accept()
			if err != nil {
				return
			}
			io.WriteString(c, "agent here")
			c.Close()
		}
	}()
	url := fmt.Sprintf("http://host.kiln.internal:%d/", host.Addr().(*net.TCPAddr).Port)
	for name, opts := range stepModes(t) {
		for _, tc := range []struct {
			name string
			args []string
			want string
		}{
			{"http", []string{"get", url}, "host says hello"},
			{"ssh agent", []string{"dial", "/run/buildkit/ssh_agent.0"}, "agent here"},
			{"ssh env", []string{"info"}, "SSH_AUTH_SOCK=/run/buildkit/ssh_agent.0"},
			// No slirp4netns: no address for the host in /etc/hosts.
			{"none", []string{"info"}, `"hosts":"127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.0.1\tbuildkitsandbox\n"`},
		} {
			t.Run(name+"/"+tc.name, func(t *testing.T) {
				t.Parallel()
				spec := probeStep(tc.args...)
				spec.Mounts = []StepMount{{Type: MountSSH, Source: sock}}
				spec.NoNetwork = tc.name == "none"
				var out syncBuffer
				l, err := Step(context.Background(), stepBase(t), spec, append(stepOptions(t, t.TempDir(), &out), opts...)...)
				if err != nil {
					t.Fatalf("Step() = %v\n%s", err, out.String())
				}
				if !strings.Contains(out.String(), tc.want) {
					t.Errorf("Step(%q) printed %q, want %q in it", tc.args, out.String(), tc.want)
				}
				if got := layerEntries(t, l); len(got) != 0 {
					t.Errorf("Step(%q) layer = %q, want none", tc.args, got)
				}
			})
		}
	}
}

// BenchmarkStep times a trivial step, from the call to its layer, on
// layers already unpacked.
func BenchmarkStep(b *testing.B) {
	if nsErr != nil {
		b.Skip(nsErr)
	}
	base, err := newLayer(dirEntry("data", 0o755))
	if err != nil {
		b.Fatal(err)
	}
	cacheDir := b.TempDir()
	spec := probeStep("fs", "write", "/data/f", "x")
	for b.Loop() {
		if _, err := Step(context.Background(), []v1.Layer{probeLayer, base}, spec, WithCacheDir(cacheDir)); err != nil {
			b.Fatal(err)
		}
	}
}

// TestStepLeftovers: what a step's command leaves running is killed before
// the layer is read, and /tmp stays the stage's.
func TestStepLeftovers(t *testing.T) {
	requireNamespaces(t)
	const token = "kiln-step-test-leftover"
	spec := probeStep("spawn", token)
	var out syncBuffer
	if _, err := Step(context.Background(), stepBase(t), spec, stepOptions(t, t.TempDir(), &out)...); err != nil {
		t.Fatalf("Step() = %v\n%s", err, out.String())
	}
	if left := processesWith(t, "sleep "+token); len(left) > 0 {
		t.Errorf("Step() left %q running", left)
	}
	spec = probeStep("fs", "write", "/tmp/x", "x")
	l, err := Step(context.Background(), stepBase(t), spec, stepOptions(t, t.TempDir(), &out)...)
	if err != nil {
		t.Fatalf("Step() = %v\n%s", err, out.String())
	}
	want := []string{"5 tmp/ 755 0:0 0", "0 tmp/x 644 0:0 0 x"}
	if diff := cmp.Diff(want, layerEntries(t, l)); diff != "" {
		t.Errorf("Step() layer entries (-want +got):\n%s", diff)
	}
}

// TestStepMountsOwned: a step as a user reads a secret and fills a cache
// that mounts give that user, and writes on a tmpfs; none of it stays.
func TestStepMountsOwned(t *testing.T) {
	requireNamespaces(t)
	secret := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(secret, []byte("s3cr3t"), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, opts := range stepModes(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cacheDir := t.TempDir()
			spec := StepSpec{User: "app", Mounts: []StepMount{
				{Type: MountSecret, ID: "token", Source: secret, UID: 1000},
				{Type: MountCache, ID: "npm", Target: "/home/app/.npm", UID: 1000, GID: 1000},
				{Type: MountTmpfs, Target: "/scratch"},
			}}
			for _, tc := range []struct {
				args []string
				want string
			}{
				{[]string{"cat", "/run/secrets/token"}, "s3cr3t"},
				{[]string{"append", "/home/app/.npm/log"}, ""},
				{[]string{"cat", "/home/app/.npm/log"}, "appended\n"},
				{[]string{"fs", "mkdir", "/scratch/a", ";", "write", "/scratch/a/b", "x"}, ""},
			} {
				var out syncBuffer
				spec.Args = append([]string{"probe"}, tc.args...)
				l, err := Step(context.Background(), stepBase(t), spec, append(stepOptions(t, cacheDir, &out), opts...)...)
				if err != nil {
					t.Fatalf("Step(%q) = %v\n%s", tc.args, err, out.String())
				}
				if out.String() != tc.want {
					t.Errorf("Step(%q) printed %q, want %q", tc.args, out.String(), tc.want)
				}
				if got := layerEntries(t, l); len(got) != 0 {
					t.Errorf("Step(%q) layer = %q, want no trace of the mounts", tc.args, got)
				}
			}
			// Without root, the cache holds a file of a subordinate id,
			// which only the container's root may remove.
			spec.User, spec.Args = "", []string{"probe", "fs", "rm", "/home/app/.npm/log"}
			if _, err := Step(context.Background(), stepBase(t), spec, append(stepOptions(t, cacheDir, io.Discard), opts...)...); err != nil {
				t.Errorf("Step(rm) = %v", err)
			}
		})
	}
}

// TestStepCancelled: a step whose context ends stops at once, with an
// error, and writes no layer.
func TestStepCancelled(t *testing.T) {
	requireNamespaces(t)
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := Step(ctx, stepBase(t), probeStep("stubborn"), stepOptions(t, t.TempDir(), io.Discard)...)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Step(cancelled) = %v, want %v", err, context.DeadlineExceeded)
	}
	// Killed at once, not after a grace period.
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Step(cancelled) took %s", d)
	}
}

// TestShareCache: cache mounts' sharing modes, as BuildKit has them.
func TestShareCache(t *testing.T) {
	store, err := cache.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	mount := func(sharing string) StepMount {
		return StepMount{Type: MountCache, Target: "/root/.cache", Sharing: sharing}
	}

	// Shared: any number at once.
	first, inUse, err := shareCache(store, mount(SharingShared))
	if err != nil || inUse {
		t.Fatalf("shareCache(shared) = %v, in use %v", err, inUse)
	}
	second, inUse, err := shareCache(store, mount(""))
	if err != nil || inUse {
		t.Fatalf("shareCache(shared) while shared = %v, in use %v", err, inUse)
	}
	second.Close()

	// Private, while another step uses the cache: in use, no lock.
	if l, inUse, err := shareCache(store, mount(SharingPrivate)); err != nil || !inUse || l != nil {
		t.Errorf("shareCache(private) in use = %v, %v, %v; want in use, no lock", l, inUse, err)
	}

	// Locked: waits for the other users to let go.
	got := make(chan *flock.Lock)
	go func() {
		l, _, err := shareCache(store, mount(SharingLocked))
		if err != nil {
			t.Error(err)
		}
		got <- l
	}()
	select {
	case l := <-got:
		l.Close()
		t.Fatal("a locked cache was taken while another step used it")
	case <-time.After(100 * time.Millisecond):
	}
	first.Close()
	select {
	case l := <-got:
		l.Close()
	case <-time.After(5 * time.Second):
		t.Fatal("a locked cache was not taken once free")
	}

	// Private, with the cache free: the cache itself.
	l, inUse, err := shareCache(store, mount(SharingPrivate))
	if err != nil || inUse || l == nil {
		t.Errorf("shareCache(private) free = %v, %v, %v; want the cache, locked", l, inUse, err)
	}
	l.Close()

	if _, _, err := shareCache(store, mount("sometimes")); err == nil {
		t.Error("shareCache(sometimes) = nil, want an error")
	}
}
