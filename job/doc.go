// Package job builds a stack's functions in a Kubernetes cluster: one
// batch/v1 Job per function, running kiln's executor (kaniko's flags) on
// a build context that was pushed to the registry as an OCI artifact
// (package buildcontext), so that no bucket and no shared volume is
// needed.
//
// The flow of Stack: each selected function's context is laid out
// (project.BuildContext), packed and pushed next to its image, as the tag
// context-<first 12 hex digits of its digest> of the image's own
// repository: the credentials that push the image push the context too,
// and registries that need repositories created first (ECR) need no new
// one. The Job names it by digest. Then the Jobs run, at most a given
// number at once; each pod's log is streamed with the function's name as
// its prefix, the Job is watched until it completes or fails (bounded by
// its activeDeadlineSeconds and a margin), and the image digest is read
// from the container's termination message, which the executor writes
// (--digest-file=/dev/termination-log).
//
// The pod is what the restricted Pod Security Standard allows: a
// non-root user (65532), seccomp RuntimeDefault, every capability
// dropped, no privilege escalation, a read-only root filesystem with
// emptyDir volumes for /tmp and kiln's cache, no service account token.
// The docker config Secret is mounted at /kaniko/.docker as kaniko
// mounts it. Dependency credentials (.npmrc, pip.conf, settings.xml) come
// from Secrets mounted read-only under /kaniko/dependencies, outside the
// context, and are named to the package managers through their own
// environment variables (NPM_CONFIG_USERCONFIG, PIP_CONFIG_FILE, and
// MAVEN_OPTS's user.home for Maven), so only the dependency install reads
// them and no layer holds them.
//
// With Render (kiln job --output yaml) the contexts are pushed all the
// same, so that the printed Jobs run as they are when applied, but
// nothing is created in the cluster.
//
// A failed build is a *Failure: one line with the function, the reason
// (OOMKilled, ImagePullBackOff, ErrImagePull, BackoffLimitExceeded,
// DeadlineExceeded, ...) and the pod's last log lines.
package job
