//go:build tools

// Package buildkit names the BuildKit commands bench.sh builds; nothing
// here is compiled into kiln.
package buildkit

import (
	_ "github.com/moby/buildkit/cmd/buildctl"
	_ "github.com/moby/buildkit/cmd/buildkitd"
)
