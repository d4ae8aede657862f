package job

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// failureCase is a testdata/failures file: a Job and its pods as the API
// server reports them, and what classify should make of them.
type failureCase struct {
	Job  batchv1.Job  `json:"job"`
	Pods []corev1.Pod `json:"pods"`
	Want struct {
		Reason string `json:"reason"`
		Detail string `json:"detail"`
	} `json:"want"`
}

func TestClassify(t *testing.T) {
	files, err := filepath.Glob("testdata/failures/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no cases: %v", err)
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".yaml"), func(t *testing.T) {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			var tc failureCase
			if err := yaml.UnmarshalStrict(b, &tc); err != nil {
				t.Fatal(err)
			}
			reason, detail, ok := classify(&tc.Job, tc.Pods)
			if ok != (tc.Want.Reason != "") || reason != tc.Want.Reason || detail != tc.Want.Detail {
				t.Errorf("classify() = %q, %q, %v, want %q, %q", reason, detail, ok, tc.Want.Reason, tc.Want.Detail)
			}
		})
	}
}

func TestFailureError(t *testing.T) {
	f := &Failure{Function: "hello", Job: "builds/kiln-hello-4f5d0c1b2a-x7k2p", Reason: "OOMKilled", Detail: "memory limit 32Mi",
		Logs: []string{"step 3/4 npm install", "", "npm ERR! code\tE137\n" + strings.Repeat("x", 400) + " the cause"}}
	got := f.Error()
	want := "hello: job builds/kiln-hello-4f5d0c1b2a-x7k2p failed: OOMKilled (memory limit 32Mi); last log: step 3/4 npm install | npm ERR! code E137 " + strings.Repeat("x", 100-len("npm ERR! code E137 ")) + " … " + strings.Repeat("x", 300-len(" the cause")) + " the cause"
	if got != want {
		t.Errorf("Error() =\n%s\nwant\n%s", got, want)
	}
	if strings.Contains(got, "\n") {
		t.Errorf("Error() = %q, want one line", got)
	}
}
