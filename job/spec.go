package job

import (
	"fmt"
	"maps"
	"path"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kiln-build/kiln/internal/usage"
)

// Settings shape every Job of a run: kiln job's flags.
type Settings struct {
	// Namespace the Jobs run in.
	Namespace string
	// ExecutorImage is the image the Jobs run: kiln's executor.
	ExecutorImage string
	// TTL is the Jobs' ttlSecondsAfterFinished.
	TTL time.Duration
	// Deadline is the Jobs' activeDeadlineSeconds.
	Deadline time.Duration
	// BackoffLimit is how many times a failed pod is retried.
	BackoffLimit int32
	// CPU and Memory are the container's requests, CPULimit and
	// MemoryLimit its limits; "" sets none.
	CPU, CPULimit, Memory, MemoryLimit string
	ServiceAccount                     string
	ImagePullSecret                    string
	// DockerConfigSecret is a kubernetes.io/dockerconfigjson Secret
	// mounted as /kaniko/.docker/config.json.
	DockerConfigSecret string
	// DependencySecrets maps a dependency credential file (.npmrc,
	// pip.conf, settings.xml) to the Secret holding it under that key.
	DependencySecrets map[string]string
	// CacheRepo is the executor's --cache-repo; "" lets it choose.
	CacheRepo string
	// Insecure names registry hosts the executor reaches over plain HTTP.
	Insecure []string
	// HostNetwork runs the pods in the node's network (for tests whose
	// registry listens on the node's 127.0.0.1).
	HostNetwork bool
	// Epoch is SOURCE_DATE_EPOCH passed to the executor; "" for none.
	Epoch string
}

// Paths and names in the pod.
const (
	container       = "executor"
	dockerConfigDir = "/kaniko/.docker"
	dependenciesDir = "/kaniko/dependencies"
	cacheDir        = "/cache"
	terminationLog  = "/dev/termination-log"
	// uid is the executor image's user, as distroless images number
	// their nonroot user.
	uid = 65532
	// LabelFunction names the function a Job builds.
	LabelFunction = "kiln.dev/function"
)

// dependencyFile is where a dependency credential file is mounted (the
// Secret's volume at dir, the file at item in it), and the variable
// through which its package manager is told of it.
type dependencyFile struct {
	dir, item string
	env       func(dir string) corev1.EnvVar
}

var dependencyFiles = map[string]dependencyFile{
	".npmrc": {"npm", ".npmrc", func(d string) corev1.EnvVar {
		return corev1.EnvVar{Name: "NPM_CONFIG_USERCONFIG", Value: path.Join(d, ".npmrc")}
	}},
	"pip.conf": {"pip", "pip.conf", func(d string) corev1.EnvVar {
		return corev1.EnvVar{Name: "PIP_CONFIG_FILE", Value: path.Join(d, "pip.conf")}
	}},
	// Maven before 3.9 (Debian's) has no variable for its settings: it
	// reads ${user.home}/.m2/settings.xml, so user.home is the volume, and
	// the local repository stays in the writable /tmp.
	"settings.xml": {"maven", ".m2/settings.xml", func(d string) corev1.EnvVar {
		return corev1.EnvVar{Name: "MAVEN_OPTS", Value: "-Duser.home=" + d + " -Dmaven.repo.local=/tmp/.m2/repository"}
	}},
}

// ParseDependencySecrets reads --dependency-secret FILE=SECRET flags.
func ParseDependencySecrets(kvs []string) (map[string]string, error) {
	out := map[string]string{}
	for _, kv := range kvs {
		file, secret, ok := strings.Cut(kv, "=")
		if _, known := dependencyFiles[file]; !ok || !known || !validName(secret) {
			return nil, usage.Errorf("--dependency-secret %q: want FILE=SECRET, FILE one of %s and SECRET a Secret's name", kv, strings.Join(slices.Sorted(maps.Keys(dependencyFiles)), ", "))
		}
		out[file] = secret
	}
	return out, nil
}

var dnsLabel = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

func validName(s string) bool {
	return len(s) <= 253 && dnsLabel.MatchString(strings.ReplaceAll(s, ".", "-"))
}

// resources are the container's requests and limits. A limit given
// alone is its request too, as Kubernetes defaults it; a request above
// its limit is refused here rather than by the API server.
func (s Settings) resources() (corev1.ResourceRequirements, error) {
	rr := corev1.ResourceRequirements{}
	for _, r := range []struct {
		flag, value string
		list        *corev1.ResourceList
		name        corev1.ResourceName
	}{
		{"--cpu", s.CPU, &rr.Requests, corev1.ResourceCPU},
		{"--memory", s.Memory, &rr.Requests, corev1.ResourceMemory},
		{"--cpu-limit", s.CPULimit, &rr.Limits, corev1.ResourceCPU},
		{"--memory-limit", s.MemoryLimit, &rr.Limits, corev1.ResourceMemory},
	} {
		if r.value == "" {
			continue
		}
		q, err := resource.ParseQuantity(r.value)
		if err != nil || q.Sign() <= 0 {
			return rr, usage.Errorf("%s %q: want a positive Kubernetes quantity, such as 500m or 1Gi", r.flag, r.value)
		}
		if *r.list == nil {
			*r.list = corev1.ResourceList{}
		}
		(*r.list)[r.name] = q
	}
	for _, n := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		req, hasReq := rr.Requests[n]
		limit, hasLimit := rr.Limits[n]
		if hasReq && hasLimit && req.Cmp(limit) > 0 {
			return rr, usage.Errorf("--%s %s is more than --%s-limit %s", n, req.String(), n, limit.String())
		}
	}
	return rr, nil
}

// Check refuses settings no Job can be made of, naming the flag.
func (s Settings) Check() error {
	switch {
	case s.ExecutorImage == "":
		return usage.Errorf("--executor-image: none given")
	case s.Namespace == "" || !dnsLabel.MatchString(s.Namespace):
		return usage.Errorf("--namespace %q: want a namespace's name", s.Namespace)
	case s.TTL < 0:
		return usage.Errorf("--ttl %s: want 0 or more", s.TTL)
	case s.Deadline < time.Second:
		return usage.Errorf("--deadline %s: want 1s or more", s.Deadline)
	case s.BackoffLimit < 0:
		return usage.Errorf("--backoff-limit %d: want 0 or more", s.BackoffLimit)
	}
	if _, err := name.ParseReference(s.ExecutorImage); err != nil {
		return usage.Errorf("--executor-image %q: %v", s.ExecutorImage, err)
	}
	for flag, v := range map[string]string{"--service-account": s.ServiceAccount, "--image-pull-secret": s.ImagePullSecret, "--docker-config-secret": s.DockerConfigSecret} {
		if v != "" && !validName(v) {
			return usage.Errorf("%s %q: want a Kubernetes object's name", flag, v)
		}
	}
	_, err := s.resources()
	return err
}

// Build is one function's build in the cluster.
type Build struct {
	Function string
	// Image is the destination, as the stack names it (with its tag).
	Image string
	// Context is the pushed build context.
	Context name.Digest
	// Lang is the function's lang for a language pack build, "" for a
	// Dockerfile build.
	Lang      string
	BuildArgs map[string]string
}

// Name is the Job's name when it is printed: kiln-<function>-<context>,
// so that a new context is a new Job (Jobs are immutable) and the same
// context the same one. A Job kiln creates itself gets a random suffix
// after it.
func Name(b Build) string {
	fn := strings.Trim(invalidName.ReplaceAllString(strings.ToLower(b.Function), "-"), "-")
	// 63 for the label Kubernetes sets to the Job's name, less the
	// context's 10 digits, the random suffix and the dashes.
	fn = strings.TrimRight(fn[:min(len(fn), 63-len("kiln--")-10-6)], "-")
	return "kiln-" + fn + "-" + b.Context.DigestStr()[len("sha256:"):][:10]
}

var invalidName = regexp.MustCompile(`[^a-z0-9-]+`)

// args are the executor's arguments: kaniko's flags, and kiln's --lang.
func (b Build) args(s Settings) []string {
	args := []string{
		"--context=oci://" + b.Context.String(),
		"--destination=" + b.Image,
		"--digest-file=" + terminationLog,
		"--cache=true",
	}
	if s.CacheRepo != "" {
		args = append(args, "--cache-repo="+s.CacheRepo)
	}
	for _, h := range s.Insecure {
		args = append(args, "--insecure-registry="+h)
	}
	if b.Lang != "" {
		args = append(args, "--lang="+b.Lang)
	}
	// The function's name labels the image, as a local build's does.
	args = append(args, "--function="+b.Function)
	for _, k := range slices.Sorted(maps.Keys(b.BuildArgs)) {
		args = append(args, "--build-arg="+k+"="+b.BuildArgs[k])
	}
	return args
}

// New returns the Job that builds b, named by Name.
func New(b Build, s Settings) (*batchv1.Job, error) {
	if err := s.Check(); err != nil {
		return nil, err
	}
	res, err := s.resources()
	if err != nil {
		return nil, err
	}
	yes, no := true, false
	user := int64(uid)
	env := []corev1.EnvVar{
		{Name: "HOME", Value: "/tmp"},
		{Name: "DOCKER_CONFIG", Value: dockerConfigDir},
		{Name: "KILN_CACHE_DIR", Value: cacheDir},
	}
	if s.Epoch != "" {
		env = append(env, corev1.EnvVar{Name: "SOURCE_DATE_EPOCH", Value: s.Epoch})
	}
	volumes := []corev1.Volume{
		{Name: "tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
		{Name: "cache", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
	}
	mounts := []corev1.VolumeMount{{Name: "tmp", MountPath: "/tmp"}, {Name: "cache", MountPath: cacheDir}}
	// Secret files are root's, readable by the pod's group.
	secretMode := int32(0o440)
	if s.DockerConfigSecret != "" {
		volumes = append(volumes, corev1.Volume{Name: "docker-config", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
			SecretName: s.DockerConfigSecret, DefaultMode: &secretMode,
			Items: []corev1.KeyToPath{{Key: corev1.DockerConfigJsonKey, Path: "config.json"}},
		}}})
		mounts = append(mounts, corev1.VolumeMount{Name: "docker-config", MountPath: dockerConfigDir, ReadOnly: true})
	}
	for i, file := range slices.Sorted(maps.Keys(s.DependencySecrets)) {
		vol := fmt.Sprintf("dependency-%d", i)
		df := dependencyFiles[file]
		dir := path.Join(dependenciesDir, df.dir)
		volumes = append(volumes, corev1.Volume{Name: vol, VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
			SecretName: s.DependencySecrets[file], DefaultMode: &secretMode,
			Items: []corev1.KeyToPath{{Key: file, Path: df.item}},
		}}})
		mounts = append(mounts, corev1.VolumeMount{Name: vol, MountPath: dir, ReadOnly: true})
		env = append(env, df.env(dir))
	}
	var pullSecrets []corev1.LocalObjectReference
	if s.ImagePullSecret != "" {
		pullSecrets = []corev1.LocalObjectReference{{Name: s.ImagePullSecret}}
	}
	labels := map[string]string{"app.kubernetes.io/managed-by": "kiln", "app.kubernetes.io/name": "kiln-executor"}
	if len(b.Function) <= 63 && dnsLabel.MatchString(strings.ReplaceAll(b.Function, "_", "-")) {
		labels[LabelFunction] = b.Function
	}
	ttl := int32(s.TTL / time.Second)
	deadline := int64(s.Deadline / time.Second)
	backoff := s.BackoffLimit
	return &batchv1.Job{
		TypeMeta: metav1.TypeMeta{APIVersion: "batch/v1", Kind: "Job"},
		ObjectMeta: metav1.ObjectMeta{
			Name: Name(b), Namespace: s.Namespace, Labels: labels,
			Annotations: map[string]string{"kiln.dev/image": b.Image, "kiln.dev/context": b.Context.String()},
		},
		Spec: batchv1.JobSpec{
			BackoffLimit:            &backoff,
			ActiveDeadlineSeconds:   &deadline,
			TTLSecondsAfterFinished: &ttl,
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					RestartPolicy:                corev1.RestartPolicyNever,
					ServiceAccountName:           s.ServiceAccount,
					AutomountServiceAccountToken: &no,
					EnableServiceLinks:           &no,
					HostNetwork:                  s.HostNetwork,
					ImagePullSecrets:             pullSecrets,
					SecurityContext: &corev1.PodSecurityContext{
						RunAsNonRoot: &yes, RunAsUser: &user, RunAsGroup: &user, FSGroup: &user,
						SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
					},
					Containers: []corev1.Container{{
						Name:                     container,
						Image:                    s.ExecutorImage,
						Args:                     b.args(s),
						Env:                      env,
						Resources:                res,
						VolumeMounts:             mounts,
						TerminationMessagePath:   terminationLog,
						TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
						SecurityContext: &corev1.SecurityContext{
							RunAsNonRoot: &yes, AllowPrivilegeEscalation: &no, ReadOnlyRootFilesystem: &yes,
							Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
						},
					}},
					Volumes: volumes,
				},
			},
		},
	}, nil
}
