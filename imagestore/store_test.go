package imagestore

import (
	"context"
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

func TestStoreFind(t *testing.T) {
	ctx := context.Background()
	srv := httptest.NewServer(registry.New())
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")

	s := Open(t.TempDir())
	local, remoteImg := labelled(t, "local"), labelled(t, "remote")
	localRef := mustRef(t, host+"/fn:1")
	if _, err := s.Publisher().Publish(ctx, local, localRef); err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(localRef, remoteImg); err != nil {
		t.Fatal(err)
	}
	onlyRemote := mustRef(t, host+"/other:1")
	if err := remote.Write(onlyRemote, remoteImg); err != nil {
		t.Fatal(err)
	}
	onlyLocal := mustRef(t, host+"/unpushed:1")
	if _, err := s.Publisher().Publish(ctx, local, onlyLocal); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name  string
		image string
		opts  []FindOption
		want  string // the image's label, or "" for an error
	}{
		{"local first", localRef.String(), nil, "local"},
		{"by digest from the local store", host + "/fn@" + digestOf(t, local).String(), nil, "local"},
		{"by digest from the registry", host + "/other@" + digestOf(t, remoteImg).String(), nil, "remote"},
		{"pull skips the local store", localRef.String(), []FindOption{Pull()}, "remote"},
		{"registry first", localRef.String(), []FindOption{RegistryFirst()}, "remote"},
		{"registry first, else local", onlyLocal.String(), []FindOption{RegistryFirst()}, "local"},
		{"not local: registry", onlyRemote.String(), nil, "remote"},
		{"nowhere", host + "/missing:1", []FindOption{RegistryFirst()}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			img, err := s.Find(ctx, tc.image, tc.opts...)
			if tc.want == "" {
				if err == nil || !strings.Contains(err.Error(), "neither in its registry") {
					t.Errorf("Find(%s) = %v, want an error saying where it looked", tc.image, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Find(%s) = %v", tc.image, err)
			}
			cf, err := img.ConfigFile()
			if err != nil {
				t.Fatal(err)
			}
			if got := cf.Config.Cmd[0]; got != tc.want {
				t.Errorf("Find(%s) found the %s image, want the %s one", tc.image, got, tc.want)
			}
		})
	}
}

func TestStoreFindBadReference(t *testing.T) {
	_, err := Open(t.TempDir()).Find(context.Background(), "Bad:Ref:x")
	var re *ReferenceError
	if !errors.As(err, &re) || !strings.Contains(err.Error(), `image reference "Bad:Ref:x"`) {
		t.Errorf("Find(Bad:Ref:x) = %v, want a *ReferenceError naming the reference", err)
	}
}

func mustRef(t *testing.T, s string) name.Reference {
	t.Helper()
	ref, err := name.ParseReference(s)
	if err != nil {
		t.Fatal(err)
	}
	return ref
}

func TestStoreListNames(t *testing.T) {
	s := Open(t.TempDir())
	if names, err := s.Names(context.Background()); err != nil || names != nil {
		t.Fatalf("Names() of an empty store = %v, %v, want none", names, err)
	}
	for _, n := range []string{"hello:dev", "ghcr.io/me/world:1", "hello:dev"} {
		if _, err := s.Publisher().Publish(context.Background(), labelled(t, n), mustRef(t, n)); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{"ghcr.io/me/world:1", "index.docker.io/library/hello:dev"}
	if names, err := s.Names(context.Background()); err != nil || !slices.Equal(names, want) {
		t.Errorf("Names() = %v, %v, want %v", names, err, want)
	}
}

// TestStoreNames: a name without a registry means Docker Hub, in the
// local store as in docker; a name found locally is never pulled, and a
// pull is told before it happens.
func TestStoreNames(t *testing.T) {
	ctx := context.Background()
	s := Open(t.TempDir())
	img := labelled(t, "local")
	if _, err := s.Publisher().Publish(ctx, img, mustRef(t, "user/fn")); err != nil {
		t.Fatal(err)
	}
	for _, image := range []string{"user/fn", "user/fn:latest", "docker.io/user/fn", "index.docker.io/user/fn:latest", "user/fn@" + digestOf(t, img).String()} {
		var pulled []string
		got, err := s.Find(ctx, image, OnPull(func(image string) { pulled = append(pulled, image) }))
		if err != nil {
			t.Errorf("Find(%s) = %v", image, err)
			continue
		}
		if digestOf(t, got) != digestOf(t, img) || len(pulled) != 0 {
			t.Errorf("Find(%s) = %s, pulled %v; want the local image, no pull", image, digestOf(t, got), pulled)
		}
	}

	srv := httptest.NewServer(registry.New())
	t.Cleanup(srv.Close)
	remoteRef := strings.TrimPrefix(srv.URL, "http://") + "/fn:1"
	if err := remote.Write(mustRef(t, remoteRef), labelled(t, "remote")); err != nil {
		t.Fatal(err)
	}
	var pulled []string
	if _, err := s.Find(ctx, remoteRef, OnPull(func(image string) { pulled = append(pulled, image) })); err != nil {
		t.Fatal(err)
	}
	if len(pulled) != 1 || pulled[0] != remoteRef {
		t.Errorf("Find(%s) told pulls %v, want [%s]", remoteRef, pulled, remoteRef)
	}

	// A local image whose manifest is gone is an error, not a pull.
	if _, err := s.Publisher().Publish(ctx, img, mustRef(t, remoteRef)); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(s.Dir(), "blobs", "sha256", digestOf(t, img).Hex)); err != nil {
		t.Fatal(err)
	}
	pulled = nil
	if _, err := s.Find(ctx, remoteRef, OnPull(func(image string) { pulled = append(pulled, image) })); err == nil || len(pulled) != 0 {
		t.Errorf("Find(damaged local %s) = %v, pulled %v; want an error and no pull", remoteRef, err, pulled)
	}
}
