package bases

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/kiln-build/kiln/runtime-images/debian"
	"github.com/kiln-build/kiln/runtime-images/debian/debiantest"
)

func TestExtend(t *testing.T) {
	file := func(p, data string) debiantest.File { return debiantest.File{Path: p, Mode: 0o644, Data: data} }
	m := newStaticMirror(t,
		debiantest.Deb{Name: "libpq5", Version: "15.1", Depends: "libssl3 (>= 3.0), netbase", Files: []debiantest.File{file("./usr/lib/libpq.so.5", "pq")}},
		debiantest.Deb{Name: "libssl3", Version: "3.0.1", Files: []debiantest.File{file("./usr/lib/libssl.so.3", "ssl")}},
	)
	r := lockedStatic(t, m)
	ctx := context.Background()
	f := newFetcher(t, m)

	extra, err := Extend(ctx, r, "amd64", []string{"libpq5", "netbase"}, f)
	if err != nil {
		t.Fatalf("Extend() = %v", err)
	}
	var got []string
	for _, p := range extra {
		got = append(got, p.Name)
	}
	if want := []string{"libpq5", "libssl3"}; !slices.Equal(got, want) {
		t.Errorf("Extend() = %v, want %v (netbase is the base's already)", got, want)
	}

	b, err := Assemble(ctx, r, "amd64", f, WithExtraPackages(extra))
	if err != nil {
		t.Fatal(err)
	}
	plain, err := Assemble(ctx, r, "amd64", f)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(b.Steps) - len(plain.Steps); n != 2 {
		t.Fatalf("extended base has %d more steps, want 2", n)
	}
	for i := range plain.Steps {
		k1, _ := plain.Steps[i].Key(ctx)
		k2, _ := b.Steps[i].Key(ctx)
		if k1 != k2 {
			t.Errorf("step %d (%s) key changed by extra packages; the base's layers must stay shared", i, plain.Steps[i].Name())
		}
	}
	img, _ := image(t, b)
	files := flatten(t, img)
	if _, ok := files["usr/lib/libpq.so.5"]; !ok {
		t.Errorf("extended base lacks usr/lib/libpq.so.5")
	}
	if got := b.Config.Labels[LabelExtra]; got != "libpq5=15.1 libssl3=3.0.1" {
		t.Errorf("label %s = %q, want the added packages", LabelExtra, got)
	}

	_, err = Extend(ctx, r, "amd64", []string{"no-such-package"}, f)
	var nf *debian.NotFoundError
	if !errors.As(err, &nf) {
		t.Errorf("Extend(unknown) = %v, want a NotFoundError naming the package", err)
	}
}
