//go:build cluster

package kube

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

const (
	// dirPrefix names every cluster's directory under the temporary
	// directory, so that sweep finds those of dead test processes.
	dirPrefix = "kiln-kube-"
	// ownerFile holds the pid of the test process that owns the directory.
	ownerFile = "owner.pid"
	// drainTimeout bounds deleting the workloads before the kubelet stops.
	drainTimeout = 60 * time.Second
	ctrTimeout   = 20 * time.Second
)

// Close stops the cluster and removes its directory: it deletes every
// Deployment, Job and pod so that the kubelet unmounts their volumes and
// removes their sandboxes, stops the kubelet, the scheduler, the controller manager and
// the apiserver, removes whatever containers are left, stops containerd
// and etcd (last: the apiserver hangs on SIGTERM without it), then
// unmounts everything under the directory. It goes on past errors and
// returns them all.
func (c *Cluster) Close() error {
	if c == nil || c.closed {
		return nil
	}
	c.closed = true
	var errs []error
	if p := c.procs[apiserver]; p != nil && p.running() && c.procs[kubelet] != nil {
		errs = append(errs, c.drain())
	}
	for _, n := range stopOrder {
		if n == containerd {
			errs = append(errs, c.removeTasks())
		}
		if p := c.procs[n]; p != nil {
			errs = append(errs, p.stop())
		}
	}
	errs = append(errs, cleanDir(c.Dir))
	return errors.Join(errs...)
}

// drain deletes the Deployments, Jobs and pods of every namespace and
// waits until the kubelet has stopped every pod.
func (c *Cluster) drain() error {
	ctx, cancel := context.WithTimeout(context.Background(), drainTimeout)
	defer cancel()
	nss, err := c.Client.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("draining: %w", err)
	}
	background := metav1.DeletePropagationBackground
	grace := int64(1)
	for _, ns := range nss.Items {
		// Deployments first: their ReplicaSets would make the pods anew.
		err := c.Client.AppsV1().Deployments(ns.Name).DeleteCollection(ctx,
			metav1.DeleteOptions{PropagationPolicy: &background}, metav1.ListOptions{})
		if err != nil {
			return fmt.Errorf("draining: deleting the deployments of %s: %w", ns.Name, err)
		}
		err = c.Client.BatchV1().Jobs(ns.Name).DeleteCollection(ctx,
			metav1.DeleteOptions{PropagationPolicy: &background}, metav1.ListOptions{})
		if err != nil {
			return fmt.Errorf("draining: deleting the jobs of %s: %w", ns.Name, err)
		}
		err = c.Client.CoreV1().Pods(ns.Name).DeleteCollection(ctx,
			metav1.DeleteOptions{GracePeriodSeconds: &grace}, metav1.ListOptions{})
		if err != nil {
			return fmt.Errorf("draining: deleting the pods of %s: %w", ns.Name, err)
		}
	}
	return waitFor(ctx, "every pod to be gone", drainTimeout, []*proc{c.procs[kubelet]}, func(ctx context.Context) error {
		pods, err := c.Client.CoreV1().Pods(metav1.NamespaceAll).List(ctx, metav1.ListOptions{})
		if err != nil {
			return err
		}
		if n := len(pods.Items); n > 0 {
			return fmt.Errorf("%d pods left, %s/%s among them", n, pods.Items[0].Namespace, pods.Items[0].Name)
		}
		return nil
	})
}

// removeTasks kills and deletes the containers the kubelet left, through
// containerd, so that their shims exit. Runs after the kubelet stopped.
func (c *Cluster) removeTasks() error {
	if p := c.procs[containerd]; p == nil || !p.running() {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), ctrTimeout)
	defer cancel()
	ctr := func(args ...string) ([]byte, error) {
		args = append([]string{"--address", c.socket, "-n", "k8s.io"}, args...)
		return exec.CommandContext(ctx, c.bins["ctr"], args...).CombinedOutput()
	}
	out, err := ctr("tasks", "ls", "-q")
	if err != nil {
		return fmt.Errorf("listing containerd's tasks: %w: %s", err, bytes.TrimSpace(out))
	}
	var errs []error
	for _, id := range strings.Fields(string(out)) {
		if out, err := ctr("tasks", "delete", "--force", id); err != nil {
			errs = append(errs, fmt.Errorf("deleting task %s: %w: %s", id, err, bytes.TrimSpace(out)))
		}
	}
	return errors.Join(errs...)
}

// cleanDir removes a cluster's directory once its servers are stopped:
// containers runc still knows of are killed, processes that name the
// directory on their command line (containerd's shims) are killed,
// everything mounted under it is unmounted, and it is removed, with what
// the kubelet and containerd left outside it.
func cleanDir(dir string) error {
	var errs []error
	errs = append(errs, deleteRuncContainers(filepath.Join(dir, "containerd", "runc")))
	errs = append(errs, killMentioning(dir))
	if err := unmountUnder(dir); err != nil {
		errs = append(errs, err)
	} else if err := os.RemoveAll(dir); err != nil {
		errs = append(errs, fmt.Errorf("removing %s: %w", dir, err))
	}
	errs = append(errs, removeLinksInto(containerLogLinks, dir))
	removeEmptyCgroups(criCgroup)
	return errors.Join(errs...)
}

// The kubelet links each container's log from containerLogLinks, a fixed
// path, and removes the link only when it removes the container; runc
// makes the pods' cgroups under criCgroup in each hierarchy, since the
// kubelet runs without per-QoS cgroups.
const (
	containerLogLinks = "/var/log/containers"
	criCgroup         = "k8s.io"
)

// removeLinksInto removes the symbolic links in linkDir that point under
// dir.
func removeLinksInto(linkDir, dir string) error {
	entries, err := os.ReadDir(linkDir)
	if err != nil {
		return nil
	}
	var errs []error
	for _, e := range entries {
		link := filepath.Join(linkDir, e.Name())
		target, err := os.Readlink(link)
		if err != nil || !strings.HasPrefix(target, dir+"/") {
			continue
		}
		if err := os.Remove(link); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// removeEmptyCgroups removes name from each cgroup v1 hierarchy and the
// v2 one if it holds no cgroup and no process: the kernel refuses
// otherwise, so another cluster's pods are safe.
func removeEmptyCgroups(name string) {
	dirs, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", "*", name))
	dirs = append(dirs, filepath.Join("/sys/fs/cgroup", name))
	for _, d := range dirs {
		_ = syscall.Rmdir(d)
	}
}

// deleteRuncContainers force-deletes (kills, then removes) the containers
// of every runc root under root, one per containerd namespace.
func deleteRuncContainers(root string) error {
	roots, _ := filepath.Glob(filepath.Join(root, "*"))
	var errs []error
	for _, r := range roots {
		ids, _ := os.ReadDir(r)
		for _, id := range ids {
			out, err := exec.Command("runc", "--root", r, "delete", "--force", id.Name()).CombinedOutput()
			if err != nil {
				errs = append(errs, fmt.Errorf("runc delete %s: %w: %s", id.Name(), err, bytes.TrimSpace(out)))
			}
		}
	}
	return errors.Join(errs...)
}

// killMentioning SIGKILLs every process whose command line mentions dir.
func killMentioning(dir string) error {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !bytes.Contains(cmdline, []byte(dir)) {
			continue
		}
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
			errs = append(errs, fmt.Errorf("killing pid %d (%s): %w", pid, bytes.ReplaceAll(cmdline, []byte{0}, []byte{' '}), err))
		}
	}
	return errors.Join(errs...)
}

// unmountUnder unmounts every mount point at or under dir, deepest first,
// a few rounds since the kubelet stacks bind mounts.
func unmountUnder(dir string) error {
	for range 5 {
		points, err := mountsUnder(dir)
		if err != nil || len(points) == 0 {
			return err
		}
		for _, p := range points {
			if err := syscall.Unmount(p, 0); err != nil {
				_ = syscall.Unmount(p, syscall.MNT_DETACH)
			}
		}
	}
	points, err := mountsUnder(dir)
	if err == nil && len(points) > 0 {
		err = fmt.Errorf("still mounted after unmounting: %s", strings.Join(points, ", "))
	}
	return err
}

func mountsUnder(dir string) ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var points []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		p := unescapeMount(fields[4])
		if p == dir || strings.HasPrefix(p, dir+"/") {
			points = append(points, p)
		}
	}
	sort.Slice(points, func(i, j int) bool { return len(points[i]) > len(points[j]) })
	return points, sc.Err()
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// sweep cleans the directories of clusters whose test process died
// without closing them (a panic, a timeout, SIGKILL): their servers died
// with it, but containers, shims and mounts outlive it.
func sweep(tmp string) {
	dirs, _ := filepath.Glob(filepath.Join(tmp, dirPrefix+"*"))
	for _, d := range dirs {
		b, err := os.ReadFile(filepath.Join(d, ownerFile))
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || syscall.Kill(pid, 0) == nil {
			continue
		}
		_ = cleanDir(d)
	}
}
