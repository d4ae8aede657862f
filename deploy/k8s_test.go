package deploy

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

var update = flag.Bool("update", false, "rewrite the golden manifests in testdata")

func sampleDeployment() *Deployment {
	labels := map[string]string{"com.openfaas.scale.min": "2"}
	annotations := map[string]string{"topic": "cron"}
	return &Deployment{
		Service: "hello", Image: "localhost:5000/hello@sha256:0123", EnvProcess: "./handler",
		EnvVars: map[string]string{"write_timeout": "20s", "debug": "true"},
		Secrets: []string{"api-key"}, Constraints: []string{"kubernetes.io/arch=amd64"},
		Labels: &labels, Annotations: &annotations,
		Limits: &Resources{Memory: "128Mi", CPU: "100m"}, Requests: &Resources{Memory: "64Mi"},
		ReadOnlyRootFilesystem: true,
	}
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		os.WriteFile(path, got, 0o644)
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s (-want +got):\n%s", name, diff)
	}
}

func TestKubernetesManifests(t *testing.T) {
	out, err := KubernetesManifests(sampleDeployment())
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "k8s.yaml", out)
	docs := bytes.Split(out, []byte("---\n"))
	if len(docs) != 2 {
		t.Fatalf("KubernetesManifests() gave %d documents, want 2", len(docs))
	}
	var dep appsv1.Deployment
	if err := yaml.UnmarshalStrict(docs[0], &dep); err != nil {
		t.Fatalf("the Deployment does not read back: %v", err)
	}
	c := dep.Spec.Template.Spec.Containers[0]
	checks := []struct {
		what      string
		got, want any
	}{
		{"namespace", dep.Namespace, "openfaas-fn"},
		{"replicas", *dep.Spec.Replicas, int32(2)},
		{"readiness path", c.ReadinessProbe.HTTPGet.Path, "/_/health"},
		{"liveness port", c.LivenessProbe.HTTPGet.Port.IntValue(), 8080},
		{"runAsNonRoot", *c.SecurityContext.RunAsNonRoot, true},
		{"runAsUser", *c.SecurityContext.RunAsUser, int64(65532)},
		{"readOnlyRootFilesystem", *c.SecurityContext.ReadOnlyRootFilesystem, true},
		{"memory limit", c.Resources.Limits.Memory().String(), "128Mi"},
		{"cpu limit", c.Resources.Limits.Cpu().String(), "100m"},
		{"first env", c.Env[0], corev1.EnvVar{Name: "fprocess", Value: "./handler"}},
		{"tmp mount", c.VolumeMounts[0].MountPath, "/tmp"},
		{"tmp volume is emptyDir", dep.Spec.Template.Spec.Volumes[0].EmptyDir != nil, true},
		{"secrets mount", c.VolumeMounts[1].MountPath, "/var/openfaas/secrets"},
		{"secret", dep.Spec.Template.Spec.Volumes[1].Projected.Sources[0].Secret.Name, "api-key"},
		{"node selector", dep.Spec.Template.Spec.NodeSelector["kubernetes.io/arch"], "amd64"},
	}
	for _, ch := range checks {
		if !cmp.Equal(ch.got, ch.want) {
			t.Errorf("Deployment %s = %v, want %v", ch.what, ch.got, ch.want)
		}
	}
	var svc corev1.Service
	if err := yaml.UnmarshalStrict(docs[1], &svc); err != nil {
		t.Fatalf("the Service does not read back: %v", err)
	}
	if svc.Spec.Ports[0].Port != 8080 || svc.Spec.Selector["faas_function"] != "hello" {
		t.Errorf("Service = %+v, want port 8080 selecting faas_function=hello", svc.Spec)
	}

	d := sampleDeployment()
	d.Constraints = []string{"node.platform.os == linux"}
	out, err = KubernetesManifests(d)
	if err != nil || !bytes.Contains(out, []byte("node.platform.os: linux")) {
		t.Errorf("KubernetesManifests(key == value) = %v, want a node selector node.platform.os: linux", err)
	}
	d.Constraints = []string{"linux"}
	if _, err := KubernetesManifests(d); err == nil {
		t.Errorf("KubernetesManifests(constraint without =) = nil error")
	}
}

// TestProbePaths: faas-netes CE's /_/health for both probes, unless the
// annotations OpenFaaS Pro reads name others.
func TestProbePaths(t *testing.T) {
	tests := []struct {
		name                string
		annotations         map[string]string
		readiness, liveness string
		wantErr             string
	}{
		{"none", nil, "/_/health", "/_/health", ""},
		{"of-watchdog's /_/ready", map[string]string{ReadyPathAnnotation: "/_/ready"}, "/_/ready", "/_/health", ""},
		{"both", map[string]string{ReadyPathAnnotation: "/_/ready", HealthPathAnnotation: "/live"}, "/_/ready", "/live", ""},
		{"not a path", map[string]string{ReadyPathAnnotation: "ready"}, "", "", `annotations.com.openfaas.ready.http.path "ready": want a path starting with /`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := sampleDeployment()
			d.Annotations = &tc.annotations
			out, err := KubernetesManifests(d)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("KubernetesManifests() = %v, want %s", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var dep appsv1.Deployment
			if err := yaml.Unmarshal(bytes.Split(out, []byte("---\n"))[0], &dep); err != nil {
				t.Fatal(err)
			}
			c := dep.Spec.Template.Spec.Containers[0]
			if got := c.ReadinessProbe.HTTPGet.Path; got != tc.readiness {
				t.Errorf("readiness probe path = %s, want %s", got, tc.readiness)
			}
			if got := c.LivenessProbe.HTTPGet.Path; got != tc.liveness {
				t.Errorf("liveness probe path = %s, want %s", got, tc.liveness)
			}
		})
	}
}

func TestFunctionCRD(t *testing.T) {
	out, err := FunctionCRD(sampleDeployment())
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "crd.yaml", out)
}
