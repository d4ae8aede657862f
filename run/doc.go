// Package run runs an OCI image on the local machine without a container
// engine: it is the library behind `kiln run`.
//
// The flow is three calls, each usable on its own:
//
//	img, err := imagestore.Resolve(ctx, "oci:./out")     // registry ref, oci:DIR or tar:FILE
//	rootfs, err := run.Unpack(ctx, img, cacheDir)        // each layer extracted once, shared by images
//	err = run.Image(ctx, img, run.WithCacheDir(cacheDir)) // unpack, then run until exit or ctx done
//
// Image starts the entrypoint in its own mount, PID, UTS, IPC and network
// namespaces and a user namespace (container root is not host root),
// confined as a container runtime confines a container, whoever runs kiln
// (see Sandbox): Docker's 14 default capabilities at most, no_new_privs,
// Docker's default seccomp profile, masked and read-only /proc and /sys
// paths, and a /dev that holds only the standard devices, where no other
// device node can be opened.
//
// The network namespace is the run's alone, as a pod's is: two runs of one
// image both listen on 8080 and never see each other. WithPublish serves a
// port of it on a host listener. slirp4netns, where installed, gives it
// outbound network, DNS through the host's resolver, and the host's
// loopback under HostAliases (host.kiln.internal); /etc/hosts,
// /etc/resolv.conf and /etc/hostname are written as a runtime writes them.
//
// Overlayfs stacks the cached layer directories, read-only, under a writable
// layer of the run's own, so a run never changes the cache, and a new image
// that shares all but its top layer with a known one starts after extracting
// that layer alone. Host files and directories can be bound in (WithMounts). The namespaces are set up by a small init that is this
// same executable started again with InitArg as its first argument: a program
// that calls Image must call InitMain early in main when it sees InitArg.
//
// PID 1 of the namespace is that init, so when it exits the kernel kills every
// process left in the namespace: a run never leaves a process behind.
//
// Step runs one Dockerfile RUN the same way, on a stage's layers, and
// returns what the command changed as an OCI layer: the overlay's upper
// directory, read from inside the run (so owners are the container's ids),
// whiteouts and opaque directories as OCI markers, times clamped to the
// step's epoch, and no trace of the sandbox's own files or of RUN --mount
// mountpoints. Without root a step maps the caller's subordinate ids
// (/etc/subuid, newuidmap), so that its container has a root and the other
// users a package manager needs.
//
// Only Linux can run images; Unpack, Image and Step return errors.ErrUnsupported
// elsewhere.
package run
