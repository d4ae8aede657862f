package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"
)

// clusterTimeout bounds the cluster benchmark: the cluster's start, the
// executor images and every kiln job.
const clusterTimeout = 60 * time.Minute

// clusterSuite runs nodemem, then the benchmarks that need a real
// Kubernetes: they live in test/cluster, whose TestMain starts the cluster,
// as TestBench*, which skip unless KILN_CLUSTER_BENCH names the file they
// write their tables to.
func (b *bench) clusterSuite(ctx context.Context, w io.Writer) error {
	if err := b.memSuite(ctx, w); err != nil {
		return err
	}
	if b.cfg.kubernetes == "" {
		return errors.New("-kubernetes: no folder of Kubernetes binaries (make kubernetes builds them)")
	}
	tables := filepath.Join(b.work, "cluster-bench.md")
	ctx, cancel := context.WithTimeout(ctx, clusterTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "test", "-count=1", "-v", "-tags", "cluster", "-run", "^TestBench",
		"-timeout", clusterTimeout.String(), "./test/cluster/")
	cmd.Env = append(os.Environ(), "KILN_BIN="+b.cfg.kiln, "KILN_K8S_BIN="+b.cfg.kubernetes,
		"KILN_CLUSTER_BENCH="+tables, "KILN_CLUSTER_BENCH_RUNS="+strconv.Itoa(b.cfg.runs))
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	b.logf("cluster: %s", cmd)
	err := cmd.Run()
	// Tables written before a failure are still worth printing.
	if out, rerr := os.ReadFile(tables); rerr == nil {
		fmt.Fprint(w, string(out))
	}
	if err != nil {
		return fmt.Errorf("the cluster benchmark: %w", err)
	}
	return nil
}
