//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// runcContainer is a pushed image running under runc on the host network.
type runcContainer struct {
	p     *process
	ports functionPorts
	// bundle holds the runtime bundle; its rootfs is the container's /.
	bundle, root, id string
}

// startRunc takes a pushed image the standard OCI way: skopeo copies it
// from the registry into an OCI layout (the manifest must stay kiln's,
// digest), umoci unpacks it into a runtime bundle, whose process env must
// hold every wantEnv, and runc runs it on the host network and free ports
// until it is healthy. The test's cleanup removes the container.
func startRunc(t *testing.T, image, tag, digest string, wantEnv ...string) *runcContainer {
	t.Helper()
	work := t.TempDir()
	layout := filepath.Join(work, "layout")
	tool(t, "skopeo", "copy", "--src-tls-verify=false", "docker://"+image, "oci:"+layout+":"+tag)
	if got := layoutDigest(t, layout); got != digest {
		t.Errorf("skopeo copied manifest %s, want kiln's %s unchanged", got, digest)
	}
	bundle := filepath.Join(work, "bundle")
	unpack := []string{"unpack"}
	if os.Geteuid() != 0 {
		unpack = append(unpack, "--rootless")
	}
	tool(t, "umoci", append(unpack, "--image", layout+":"+tag, bundle)...)

	c := &runcContainer{ports: newFunctionPorts(t), bundle: bundle, root: filepath.Join(work, "runc-state")}
	spec := readSpec(t, bundle)
	env := stringsOf(spec.object(t, "process")["env"])
	for _, want := range wantEnv {
		if !slices.Contains(env, want) {
			t.Errorf("process.env = %v, want it to hold %s", env, want)
		}
	}
	spec.set(t, c.ports)
	spec.write(t, bundle)

	// The id is unique per test so that a leftover of one test cannot
	// collide with the next.
	c.id = fmt.Sprintf("kiln-e2e-%s-%d", strings.ToLower(strings.NewReplacer("/", "-", " ", "-").Replace(t.Name())), os.Getpid())
	// --keep: the container stays for the runc delete of stop.
	c.p = startProcess(t, exec.Command("runc", "--root", c.root, "run", "--keep", "--bundle", bundle, c.id))
	t.Cleanup(func() {
		// Cleanups run last-registered first: stop runc run, then remove
		// the container's state.
		c.p.stop(t)
		_ = exec.Command("runc", "--root", c.root, "delete", "--force", c.id).Run()
	})
	waitHealthy(t, c.p, c.ports.http)
	return c
}

// terminate sends SIGTERM through runc and checks that the container
// exits 0, as the watchdog does after its drain.
func (c *runcContainer) terminate(t *testing.T) {
	t.Helper()
	tool(t, "runc", "--root", c.root, "kill", c.id, "TERM")
	code, ok := c.p.wait(exitTimeout)
	if !ok {
		t.Fatalf("runc run did not exit within %s of SIGTERM\n%s", exitTimeout, c.p)
	}
	if code != 0 {
		t.Errorf("runc run exit code after SIGTERM = %d, want 0\n%s", code, c.p)
	}
	tool(t, "runc", "--root", c.root, "delete", c.id)
}
