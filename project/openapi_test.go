package project

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/kiln-build/kiln/internal/usage"
	"github.com/kiln-build/kiln/openapi"
)

// docsStack copies testdata/docs to a temporary folder, goes there and
// reads its stack.
func docsStack(t *testing.T, p *Project) *Stack {
	t.Helper()
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS("testdata/docs")); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	st, err := p.LoadStack(context.Background(), Selection{Tag: "latest"})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func loadDoc(t *testing.T, b []byte) *openapi3.T {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(b)
	if err != nil {
		t.Fatalf("loading %s: %v", b, err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("Validate() = %v", err)
	}
	return doc
}

func TestWriteDocs(t *testing.T) {
	ctx := context.Background()
	p, _ := newProject(t, map[string]string{})
	st := docsStack(t, p)
	var out bytes.Buffer
	if err := p.WriteDocs(ctx, &out, st, DocsSettings{Format: "openapi"}); err != nil {
		t.Fatalf("WriteDocs() = %v", err)
	}
	doc := loadDoc(t, out.Bytes())
	want := []string{"/function/bare", "/function/orders", "/function/orders/items/{id}", "/function/users"}
	if got := slices.Sorted(slices.Values(doc.Paths.Keys())); !slices.Equal(got, want) {
		t.Errorf("paths = %v, want %v", got, want)
	}
	if doc.Servers[0].URL != "http://127.0.0.1:31112" {
		t.Errorf("servers = %v, want the stack's gateway", doc.Servers)
	}
	if doc.Paths.Value("/function/bare").Post.Extensions[openapi.UndocumentedExtension] != true {
		t.Error("bare is not marked undocumented")
	}
	if doc.Components.Schemas["users.Item"] == nil || doc.Components.Schemas["orders.Item"] == nil {
		t.Errorf("schemas = %v, want users.Item (from the annotation's file) and orders.Item", slices.Collect(func(yield func(string) bool) {
			for k := range doc.Components.Schemas {
				yield(k)
			}
		}))
	}

	// As a file: YAML, and a page.
	if err := p.WriteDocs(ctx, nil, st, DocsSettings{Format: "openapi", Output: "api.yaml"}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile("api.yaml"); !bytes.HasPrefix(b, []byte("components:")) {
		t.Errorf("api.yaml starts %.40q, want YAML", b)
	}
	if err := p.WriteDocs(ctx, nil, st, DocsSettings{Format: "html", Output: "api.html"}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile("api.html"); !bytes.Contains(b, []byte("/function/orders/items/{id}")) {
		t.Error("api.html lacks /function/orders/items/{id}")
	}
	if err := p.WriteDocs(ctx, nil, st, DocsSettings{Format: "pdf"}); !usage.Is(err) {
		t.Errorf("WriteDocs(pdf) = %v, want a usage error", err)
	}

	// A bad fragment: the error names its file and line.
	os.WriteFile(filepath.Join("bare", "openapi.yaml"), []byte("paths:\n  /: [\n"), 0o644)
	err := p.WriteDocs(ctx, &out, st, DocsSettings{Format: "openapi"})
	if err == nil || !strings.Contains(err.Error(), filepath.Join("bare", "openapi.yaml")+":2:") {
		t.Errorf("WriteDocs() with a bad fragment = %v, want an error naming bare/openapi.yaml:2", err)
	}
}

// TestSaveInferred: the local gateway serves what its inferrer learnt,
// with its login; SaveInferred writes it as the function's fragment,
// which the merged document then uses, and keeps a hand-written one
// unless forced.
func TestSaveInferred(t *testing.T) {
	ctx := context.Background()
	home := t.TempDir()
	p, _ := newProject(t, map[string]string{"HOME": home, "OPENFAAS_CONFIG": filepath.Join(home, "faas")})
	st := docsStack(t, p)
	lg, err := p.StartLocal(LocalSettings{})
	if err != nil {
		t.Fatal(err)
	}
	defer lg.Close()
	lg.Deployer(st, DeploySettings{})
	for _, id := range []string{"1", "2"} {
		lg.inferrer.Observe(openapi.Exchange{Function: "bare", Method: "GET", Path: "/things/" + id, Status: 200, ResponseContentType: "application/json", ResponseBody: []byte(`{"id": ` + id + `, "ok": true}`)})
	}
	b, err := lg.openAPI(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if doc := loadDoc(t, b); doc.Paths.Value("/function/bare/things/{id}") == nil {
		t.Errorf("the gateway's document has paths %v, want /function/bare/things/{id}", doc.Paths.Keys())
	}

	path, err := p.SaveInferred(ctx, st, "bare", lg.URL, false)
	if err != nil {
		t.Fatalf("SaveInferred(bare) = %v", err)
	}
	if want, _ := filepath.Abs(filepath.Join("bare", "openapi.yaml")); path != want {
		t.Errorf("SaveInferred(bare) wrote %s, want %s", path, want)
	}
	var out bytes.Buffer
	if err := p.WriteDocs(ctx, &out, st, DocsSettings{Format: "openapi"}); err != nil {
		t.Fatal(err)
	}
	doc := loadDoc(t, out.Bytes())
	op := doc.Paths.Value("/function/bare/things/{id}")
	if op == nil || op.Get.Extensions[openapi.InferredExtension] != true {
		t.Fatalf("kiln docs after --save-inferred: paths %v, want bare's inferred /things/{id}", doc.Paths.Keys())
	}
	var tag map[string]any
	for _, tg := range doc.Tags {
		if tg.Name == "bare" {
			b, _ := json.Marshal(tg)
			json.Unmarshal(b, &tag)
		}
	}
	if tag[openapi.InferredExtension] != true {
		t.Errorf("bare's tag = %v, want it marked inferred", tag)
	}
	// Saving again replaces an inferred fragment; a hand-written one needs --force.
	if _, err := p.SaveInferred(ctx, st, "bare", lg.URL, false); err != nil {
		t.Errorf("SaveInferred(bare) over an inferred fragment = %v", err)
	}
	lg.inferrer.Observe(openapi.Exchange{Function: "orders", Method: "GET", Path: "/", Status: 204})
	if _, err := p.SaveInferred(ctx, st, "orders", lg.URL, false); !usage.Is(err) || !strings.Contains(err.Error(), "--force") {
		t.Errorf("SaveInferred(orders) = %v, want a usage error asking for --force", err)
	}
	if _, err := p.SaveInferred(ctx, st, "orders", lg.URL, true); err != nil {
		t.Errorf("SaveInferred(orders, force) = %v", err)
	}
	if _, err := p.SaveInferred(ctx, st, "users", lg.URL, true); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("SaveInferred(users), never called = %v, want the gateway's 404", err)
	}
}
