package executor

import (
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestFromRegistries(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"Dockerfile": `ARG BASE=other.example.com/x
FROM --platform=$BUILDPLATFORM registry.example.com:5000/team/go:1.26 AS build
FROM ${BASE}
from alpine:3.20
FROM build
FROM scratch
`})
	got := fromRegistries(filepath.Join(dir, "Dockerfile"))
	want := []string{"registry.example.com:5000", "index.docker.io"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("fromRegistries() (-want +got):\n%s", diff)
	}
}
