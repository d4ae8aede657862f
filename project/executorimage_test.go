package project

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kiln-build/kiln/internal/usage"
)

func TestBuildExecutorImagesFlags(t *testing.T) {
	script := filepath.Join(t.TempDir(), "kiln")
	if err := os.WriteFile(script, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	// A self-signed CA certificate under two names that are one in the
	// image.
	company := filepath.Join("testdata", "company-ca.crt")
	again := filepath.Join(dir, "company-ca.pem")
	ca, err := os.ReadFile(company)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(again, ca, 0o644); err != nil {
		t.Fatal(err)
	}
	notPEM := filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		f    ExecutorImageFlags
		want string
	}{
		{"bad platform", ExecutorImageFlags{Platform: "linux", Kiln: script}, `--platform "linux": want OS/ARCH[/VARIANT], e.g. linux/arm64`},
		{"registry output", ExecutorImageFlags{Platform: "linux/amd64", Output: "registry", Kiln: script}, `--output "registry": want "oci:DIR" or "tar:FILE" (--push REPO pushes)`},
		{"tar of every image", ExecutorImageFlags{Platform: "linux/amd64", Output: "tar:x.tar", Kiln: script}, "--output tar:x.tar holds one image: pick it with --only"},
		{"kiln not a binary", ExecutorImageFlags{Platform: "linux/amd64", Kiln: script}, "--kiln: " + script + " is not a Linux executable"},
		{"CA file missing", ExecutorImageFlags{Platform: "linux/amd64", Kiln: script, LocalCAs: []string{filepath.Join(dir, "none.crt")}}, "--ca-certificates: CA certificates: open " + filepath.Join(dir, "none.crt")},
		{"CA file without a certificate", ExecutorImageFlags{Platform: "linux/amd64", Kiln: script, LocalCAs: []string{notPEM}}, "--ca-certificates: CA certificates " + notPEM + ": no PEM certificate in the file"},
		{"two CA files of one name", ExecutorImageFlags{Platform: "linux/amd64", Kiln: script, LocalCAs: []string{company, again}}, "--ca-certificates: " + company + " and " + again + " would both be /usr/local/share/ca-certificates/company-ca.crt"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, _ := newProject(t, nil)
			_, _, err := p.BuildExecutorImages(context.Background(), tc.f)
			if !usage.Is(err) || !strings.HasPrefix(err.Error(), tc.want) {
				t.Errorf("BuildExecutorImages() = %v, want a usage error starting %q", err, tc.want)
			}
		})
	}
}

func TestRecordExecutorImage(t *testing.T) {
	home := t.TempDir()
	p, _ := newProject(t, map[string]string{"XDG_CONFIG_HOME": home})
	const ref = "registry.example.com/kiln/executor:all@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	path, err := p.recordExecutorImage(ref)
	if want := filepath.Join(home, "kiln", ExecutorImageFile); err != nil || path != want {
		t.Fatalf("recordExecutorImage() = %q, %v, want %q", path, err, want)
	}
	if b, err := os.ReadFile(path); err != nil || string(b) != ref+"\n" {
		t.Errorf("%s = %q, %v, want %q", path, b, err, ref+"\n")
	}
}
func TestDefaultExecutorImage(t *testing.T) {
	dir := t.TempDir()
	if _, err := DefaultExecutorImage(dir); err == nil || !strings.Contains(err.Error(), "kiln executor image build") || strings.Contains(err.Error(), "\n") {
		t.Errorf("DefaultExecutorImage(empty) = %v, want one line saying how to record one", err)
	}
	// As kiln executor image build --push records it: the all image's tag
	// and digest.
	ref := "127.0.0.1:5000/kiln/executor:all@sha256:" + strings.Repeat("0a", 32)
	if err := os.WriteFile(filepath.Join(dir, ExecutorImageFile), []byte(ref+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, err := DefaultExecutorImage(dir); got != ref || err != nil {
		t.Errorf("DefaultExecutorImage() = %q, %v, want %q", got, err, ref)
	}
	if err := os.WriteFile(filepath.Join(dir, ExecutorImageFile), []byte("kiln/executor:latest\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := DefaultExecutorImage(dir); err == nil {
		t.Error("DefaultExecutorImage(a tag) = nil error, want one asking for a digest")
	}
}
