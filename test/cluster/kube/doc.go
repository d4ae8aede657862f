//go:build cluster

// Package kube runs a real, single-node Kubernetes on 127.0.0.1 for kiln's
// cluster tests: etcd, kube-apiserver, kube-controller-manager,
// kube-scheduler, containerd with runc, and a kubelet, each on ports of its
// own and with every file under one directory. The Kubernetes binaries come
// from `make kubernetes` (test/cluster/k8s); etcd, containerd, runc and the
// CNI loopback plugin from Debian packages.
//
// A typical use, once per test binary since bring-up takes seconds:
//
//	c, err := kube.Start(ctx, dir, kube.WithInsecureRegistry(reg.Host))
//	defer c.Close()
//	jobs := c.Client.BatchV1().Jobs("default")
//
// Pods pull images from the registries given with WithInsecureRegistry over
// plain HTTP; their network is a namespace of their own that reaches
// nothing, so a pod that must talk to such a registry itself (kiln pushing
// from a Job) runs with hostNetwork in a namespace without a Pod Security
// label. Close stops everything in reverse order, unmounts what the kubelet
// and containerd mounted and removes the directory; Start first clears what
// an earlier test process left behind if it was killed.
package kube
