package deploy

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"

	"github.com/kiln-build/kiln/internal/contract"
)

// Defaults of the OpenFaaS chart that the manifests repeat.
const (
	defaultNamespace = "openfaas-fn"
	secretsPath      = "/var/openfaas/secrets"
)

// KubernetesManifests renders d as a Deployment and a Service, shaped as
// faas-netes would create them: HTTP probes on /_/health:8080 (or the
// paths ReadyPathAnnotation and HealthPathAnnotation name), the
// function's resources, a non-root user, and for a read-only root an
// emptyDir on /tmp. Secrets are mounted at /var/openfaas/secrets.
func KubernetesManifests(d *Deployment) ([]byte, error) {
	ns := d.Namespace
	if ns == "" {
		ns = defaultNamespace
	}
	selector := map[string]string{"faas_function": d.Service}
	labels := map[string]string{}
	if d.Labels != nil {
		maps.Copy(labels, *d.Labels)
	}
	maps.Copy(labels, selector)
	var annotations map[string]string
	if d.Annotations != nil && len(*d.Annotations) > 0 {
		annotations = *d.Annotations
	}
	replicas := int32(1)
	if n, err := strconv.Atoi(labels["com.openfaas.scale.min"]); err == nil && n > 0 {
		replicas = int32(n)
	}
	res, err := resourceRequirements(d)
	if err != nil {
		return nil, err
	}
	readiness, err := probe(annotations, ReadyPathAnnotation)
	if err != nil {
		return nil, err
	}
	liveness, err := probe(annotations, HealthPathAnnotation)
	if err != nil {
		return nil, err
	}
	env := []corev1.EnvVar{}
	if d.EnvProcess != "" {
		env = append(env, corev1.EnvVar{Name: contract.EnvFProcess, Value: d.EnvProcess})
	}
	for _, k := range slices.Sorted(maps.Keys(d.EnvVars)) {
		env = append(env, corev1.EnvVar{Name: k, Value: d.EnvVars[k]})
	}
	// The user is the bases' numeric one: runAsNonRoot needs a number to
	// check.
	nonRoot, user, noEscalation := true, int64(contract.UID), false
	container := corev1.Container{
		Name:           d.Service,
		Image:          d.Image,
		Ports:          []corev1.ContainerPort{{Name: "http", ContainerPort: contract.WatchdogPort, Protocol: corev1.ProtocolTCP}},
		Env:            env,
		Resources:      res,
		ReadinessProbe: readiness,
		LivenessProbe:  liveness,
		SecurityContext: &corev1.SecurityContext{
			RunAsNonRoot: &nonRoot, RunAsUser: &user, AllowPrivilegeEscalation: &noEscalation,
			ReadOnlyRootFilesystem: &d.ReadOnlyRootFilesystem,
		},
	}
	var volumes []corev1.Volume
	if d.ReadOnlyRootFilesystem {
		volumes = append(volumes, corev1.Volume{Name: "temp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}})
		container.VolumeMounts = append(container.VolumeMounts, corev1.VolumeMount{Name: "temp", MountPath: "/tmp"})
	}
	if len(d.Secrets) > 0 {
		var sources []corev1.VolumeProjection
		for _, s := range d.Secrets {
			sources = append(sources, corev1.VolumeProjection{Secret: &corev1.SecretProjection{LocalObjectReference: corev1.LocalObjectReference{Name: s}}})
		}
		volumes = append(volumes, corev1.Volume{Name: d.Service + "-projected-secrets", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: sources}}})
		container.VolumeMounts = append(container.VolumeMounts, corev1.VolumeMount{Name: d.Service + "-projected-secrets", MountPath: secretsPath, ReadOnly: true})
	}
	nodeSelector := map[string]string{}
	for _, c := range d.Constraints {
		// Swarm-era stacks write "key == value"; both read as a selector.
		k, v, ok := strings.Cut(strings.Replace(c, "==", "=", 1), "=")
		if !ok || strings.TrimSpace(k) == "" {
			return nil, &FieldError{Field: "constraints", Value: c, Msg: "want key=value, a Kubernetes node selector"}
		}
		nodeSelector[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	if len(nodeSelector) == 0 {
		nodeSelector = nil
	}
	meta := metav1.ObjectMeta{Name: d.Service, Namespace: ns, Labels: labels, Annotations: annotations}
	dep := appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: meta,
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: selector},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels, Annotations: annotations},
				Spec: corev1.PodSpec{
					Containers:   []corev1.Container{container},
					Volumes:      volumes,
					NodeSelector: nodeSelector,
				},
			},
		},
	}
	svc := corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: metav1.ObjectMeta{Name: d.Service, Namespace: ns},
		Spec: corev1.ServiceSpec{
			Type:     corev1.ServiceTypeClusterIP,
			Selector: selector,
			Ports:    []corev1.ServicePort{{Name: "http", Port: contract.WatchdogPort, TargetPort: intstr.FromInt32(contract.WatchdogPort), Protocol: corev1.ProtocolTCP}},
		},
	}
	a, err := MarshalManifest(dep)
	if err != nil {
		return nil, err
	}
	b, err := MarshalManifest(svc)
	if err != nil {
		return nil, err
	}
	return append(append(a, "---\n"...), b...), nil
}

func resourceRequirements(d *Deployment) (corev1.ResourceRequirements, error) {
	var rr corev1.ResourceRequirements
	for _, r := range []struct {
		what string
		in   *Resources
		out  *corev1.ResourceList
	}{{"limits", d.Limits, &rr.Limits}, {"requests", d.Requests, &rr.Requests}} {
		if r.in == nil {
			continue
		}
		list := corev1.ResourceList{}
		for name, v := range map[corev1.ResourceName]string{corev1.ResourceMemory: r.in.Memory, corev1.ResourceCPU: r.in.CPU} {
			if v == "" {
				continue
			}
			q, err := resource.ParseQuantity(v)
			if err != nil {
				return rr, &FieldError{Field: r.what + "." + string(name), Value: v, Msg: err.Error()}
			}
			list[name] = q
		}
		*r.out = list
	}
	return rr, nil
}

// The annotations that set the probes' paths, as OpenFaaS Pro reads them.
// faas-netes CE, whose probes the manifests otherwise repeat, probes
// /_/health for both: a function whose of-watchdog ready_path should hold
// traffic back sets ReadyPathAnnotation to /_/ready.
const (
	ReadyPathAnnotation  = "com.openfaas.ready.http.path"
	HealthPathAnnotation = "com.openfaas.health.http.path"
)

// probe returns an HTTP probe on the watchdog's port, as the OpenFaaS
// chart sets faas-netes' (period 2 s, timeout 1 s), on /_/health or the
// path the annotation names.
func probe(annotations map[string]string, annotation string) (*corev1.Probe, error) {
	path := contract.HealthPath
	if p, ok := annotations[annotation]; ok {
		if !strings.HasPrefix(p, "/") {
			return nil, &FieldError{Field: "annotations." + annotation, Value: p, Msg: "want a path starting with /"}
		}
		path = p
	}
	return &corev1.Probe{
		ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: path, Port: intstr.FromInt32(contract.WatchdogPort)}},
		PeriodSeconds: 2, TimeoutSeconds: 1, FailureThreshold: 3,
	}, nil
}

// FieldError is a deployment value that Kubernetes objects cannot hold.
// Field is the stack key it comes from, such as "limits.memory".
type FieldError struct {
	Field, Value, Msg string
}

func (e *FieldError) Error() string { return fmt.Sprintf("%s %q: %s", e.Field, e.Value, e.Msg) }

// MarshalManifest renders a Kubernetes object as YAML to apply, without
// the empty status and creationTimestamp the API types always carry.
func MarshalManifest(obj any) ([]byte, error) {
	b, err := yaml.Marshal(obj)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := yaml.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	delete(m, "status")
	dropCreation(m)
	return yaml.Marshal(m)
}

func dropCreation(v any) {
	switch t := v.(type) {
	case map[string]any:
		if t["creationTimestamp"] == nil {
			delete(t, "creationTimestamp")
		}
		for _, c := range t {
			dropCreation(c)
		}
	case []any:
		for _, c := range t {
			dropCreation(c)
		}
	}
}

// functionCRD is the openfaas.com/v1 Function, as faas-cli generate writes
// it.
type functionCRD struct {
	APIVersion string            `json:"apiVersion"`
	Kind       string            `json:"kind"`
	Metadata   metav1.ObjectMeta `json:"metadata"`
	Spec       functionSpec      `json:"spec"`
}

type functionSpec struct {
	Name                   string             `json:"name"`
	Image                  string             `json:"image"`
	Environment            map[string]string  `json:"environment,omitempty"`
	Labels                 *map[string]string `json:"labels,omitempty"`
	Annotations            *map[string]string `json:"annotations,omitempty"`
	Limits                 *Resources         `json:"limits,omitempty"`
	Requests               *Resources         `json:"requests,omitempty"`
	Constraints            []string           `json:"constraints,omitempty"`
	Secrets                []string           `json:"secrets,omitempty"`
	ReadOnlyRootFilesystem bool               `json:"readOnlyRootFilesystem,omitempty"`
}

// FunctionCRD renders d as an openfaas.com/v1 Function; envProcess goes
// into environment.fprocess unless that is already set.
func FunctionCRD(d *Deployment) ([]byte, error) {
	env := maps.Clone(d.EnvVars)
	if d.EnvProcess != "" {
		if env == nil {
			env = map[string]string{}
		}
		if _, ok := env[contract.EnvFProcess]; !ok {
			env[contract.EnvFProcess] = d.EnvProcess
		}
	}
	ns := d.Namespace
	if ns == "" {
		ns = defaultNamespace
	}
	f := functionCRD{
		APIVersion: "openfaas.com/v1",
		Kind:       "Function",
		Metadata:   metav1.ObjectMeta{Name: d.Service, Namespace: ns},
		Spec: functionSpec{
			Name: d.Service, Image: d.Image, Environment: env, Labels: d.Labels, Annotations: d.Annotations,
			Limits: d.Limits, Requests: d.Requests, Constraints: d.Constraints, Secrets: d.Secrets,
			ReadOnlyRootFilesystem: d.ReadOnlyRootFilesystem,
		},
	}
	return MarshalManifest(f)
}
