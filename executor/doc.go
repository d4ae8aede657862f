// Package executor is kiln's drop-in for kaniko's executor: `kiln
// executor`, and kiln itself when it runs under the name executor (an
// image ships it as /kaniko/executor, so kaniko's Job manifests, which
// pass flags only, run unchanged).
//
// Parse reads kaniko's command line (Flags: every flag of kaniko's table,
// short forms and deprecated aliases; a flag kaniko does not have is an
// error naming it) and Run builds: it makes the --context a local folder
// (a folder, tar:// of a file or stdin, http(s):// of a tar, git:// with
// the git binary, or oci:// of a buildcontext artifact), builds it (a
// stack.yml or --lang: kiln's language packs; else the Dockerfile, -f
// resolved as kaniko resolves it, with the Dockerfile engine), publishes
// the one image to every --destination, --tar-path and --oci-layout-path,
// and writes the digest files. Build is that build alone, which the
// builder API (package builderapi) runs too.
//
// Where kiln does otherwise than kaniko, on purpose:
//
//   - The snapshot flags (--snapshot-mode, --single-snapshot,
//     --use-new-run, --ignore-path, --ignore-var-run), --reproducible (kiln
//     always is: SOURCE_DATE_EPOCH, else 1970), the cache tuning flags
//     (--cache-ttl, --cache-run-layers, --cache-copy-layers,
//     --compressed-caching), --compression-level, the retry counts,
//     --skip-push-permission-check, --push-ignore-immutable-tag-errors,
//     --force-build-metadata, --cleanup, --force, --kaniko-dir,
//     --skip-unused-stages,
//     --log-format and --log-timestamp are accepted and checked, and have
//     no effect: kiln takes no snapshots (a step's layer is what it wrote),
//     never unpacks into /, retries registry requests itself, asks the
//     registry before pushing (an unchanged image never rewrites its tag)
//     and builds only the stages the target needs. Each flag's help says
//     so. --annotation (the fork's) sets manifest annotations.
//   - --cache-dir is kaniko's read-only base-image cache (filled by its
//     warmer); it has no effect. kiln's own cache, which it writes, is
//     $KILN_CACHE_DIR, else $XDG_CACHE_HOME/kiln or ~/.cache/kiln when
//     that can be written, else $TMPDIR/kiln-cache (CacheDir). So the
//     root persistent flag --cache-dir and -v of the other kiln commands
//     do not apply here: the executor parses its own command line, where
//     -v is kaniko's --verbosity.
//   - --cache with --cache-repo (default <first destination>/cache, as
//     kaniko infers it) keeps the Dockerfile engine's step layers in that
//     repository; --no-push-cache reads it without writing.
//   - --registry-map maps docker.io only (as a mirror); --skip-tls-verify
//     covers the destinations' registries, --skip-tls-verify-pull every
//     registry (kiln cannot tell before the build which a FROM names);
//     --insecure-pull covers the registries the FROM lines name literally
//     (one an ARG names needs --insecure-registry).
//   - Refused with a clear error: --bucket (-b), gs:// and s3:// contexts
//     (kiln job pushes contexts as oci:// artifacts instead), an
//     oci: --cache-repo, the fork's --secret, --image-format docker and
//     --compression zstd.
//
// # What a build needs in a pod
//
// A language build (a stack.yml or --lang, for every lang kiln has a pack
// for) runs the toolchain (go, javac and mvn, npm, pip) as plain
// processes and writes only three places: kiln's cache, the temporary
// folder ($TMPDIR, else /tmp) and the outputs it is given (--tar-path,
// the digest files; /dev/termination-log is written in place). It needs
// no root, no capability, no privilege escalation and no particular
// seccomp profile, so it runs under the restricted Pod Security
// Standard:
//
//	securityContext:
//	  runAsNonRoot: true
//	  runAsUser: 65532
//	  allowPrivilegeEscalation: false
//	  readOnlyRootFilesystem: true
//	  capabilities: {drop: [ALL]}
//	  seccompProfile: {type: RuntimeDefault}
//	volumeMounts: an emptyDir at /tmp, and (to reuse layers between
//	  builds) a volume at $KILN_CACHE_DIR
//
// HOME may be read-only: the tools' own caches (GOCACHE, GOMODCACHE,
// npm_config_cache, PIP_CACHE_DIR, Maven's local repository) then go
// under kiln's cache (ToolEnv), while configuration mounted in HOME
// (~/.npmrc, ~/.m2/settings.xml) is still read. TestExecutorReadOnlyRoot
// builds and pushes a Go function so: as nobody, no capabilities,
// no_new_privs, / read-only, /tmp a tmpfs, no KILN_CACHE_DIR.
//
// A Dockerfile build (a context without stack.yml, or a lang built
// through ./template/<lang>/Dockerfile) runs each RUN in kiln's sandbox
// (package run): a new user namespace, and in it mount, PID, IPC, UTS and
// network namespaces, an overlay of the stage's layers and a fresh /proc.
// A pod that allows that is not restricted, and cannot be: what the
// steps need, and why:
//
//   - unshare(CLONE_NEWUSER) and, inside the new namespace, mount, umount2,
//     pivot_root and setns: RuntimeDefault seccomp (Docker's and
//     containerd's profile) allows them only with CAP_SYS_ADMIN, so the
//     container needs seccompProfile Unconfined or a Localhost profile
//     that allows them; on AppArmor hosts, the runtime's default profile
//     denies mount too: appArmorProfile Unconfined (or a profile that
//     allows it).
//   - Mounting the step's /proc: the kernel refuses a new procfs in a user
//     namespace while the container's /proc has paths masked by
//     over-mounts, as every runtime masks them: procMount: Unmasked, which
//     Kubernetes allows only in a user-namespaced pod (hostUsers: false).
//   - A root and other users for the step's container (a package manager
//     changes owners): with hostUsers: false, run the executor as uid 0,
//     which is an unprivileged host uid, with the default capabilities
//     (CAP_SETUID and CAP_SETGID write the step's id maps); no privileged
//     container, no host path. As a non-root user instead, kiln maps its
//     subordinate ids with newuidmap (setuid root: allowPrivilegeEscalation
//     must be true, and the image needs /etc/subuid and /etc/subgid).
//
// That is hostUsers: false, runAsUser: 0, procMount: Unmasked, seccomp
// and AppArmor unconfined: the privileged Pod Security level, in a
// namespace of its own. kaniko needed a root container that unpacks base
// images into its own /; kiln's root stays inside the pod's user
// namespace.
package executor
