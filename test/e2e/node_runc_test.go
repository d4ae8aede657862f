//go:build e2e

package e2e

import (
	"testing"
)

// TestNodeRunc runs the node20 sample on the standard OCI path: skopeo
// copies it from the registry, umoci unpacks it, runc runs it on the host
// network as user 65532; it answers as the event and context contract
// says, and SIGTERM ends it with exit code 0.
func TestNodeRunc(t *testing.T) {
	needBinaries(t, "node", "npm", "skopeo", "umoci", "runc")
	reg := startRegistry(t)
	repo, tag := "e2e/runc-node", "v1"
	image := reg.Host + "/" + repo + ":" + tag
	r := mustKiln(t, kilnOpts{cache: warmCache}, "build", sample(nodeHello), "--lang", "node20", "--image", image, "--push")
	c := startRunc(t, image, tag, digestOf(t, r.stdout), "fprocess=node index.js", "mode=http", "upstream_url=http://127.0.0.1:3000")

	checkNodeContract(t, c.ports.http)
	c.terminate(t)
}
