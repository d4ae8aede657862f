package openapi

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
)

func loadFragment(t *testing.T, dir string) *openapi3.T {
	t.Helper()
	path, err := FindFragment(filepath.Join("testdata", "fragments", dir))
	if err != nil || path == "" {
		t.Fatalf("FindFragment(%s) = %q, %v", dir, path, err)
	}
	doc, err := LoadFragment(context.Background(), path)
	if err != nil {
		t.Fatalf("LoadFragment(%s) = %v", path, err)
	}
	return doc
}

// revalidate loads the marshalled document afresh, as a client of
// /system/openapi.json would, and validates it.
func revalidate(t *testing.T, doc *openapi3.T) *openapi3.T {
	t.Helper()
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	again, err := openapi3.NewLoader().LoadFromData(b)
	if err != nil {
		t.Fatalf("loading the merged document: %v\n%s", err, b)
	}
	if err := again.Validate(context.Background()); err != nil {
		t.Fatalf("Validate() = %v\n%s", err, b)
	}
	return again
}

func TestMerge(t *testing.T) {
	ctx := context.Background()
	fns := []Function{{Name: "orders", Doc: loadFragment(t, "orders")}, {Name: "users", Doc: loadFragment(t, "users")}, {Name: "bare"}}
	doc, err := Merge(ctx, Info{Title: "shop", Server: "http://127.0.0.1:8080"}, fns)
	if err != nil {
		t.Fatalf("Merge() = %v", err)
	}
	doc = revalidate(t, doc)
	if doc.OpenAPI != "3.0.3" || doc.Info.Title != "shop" || len(doc.Servers) != 1 || doc.Servers[0].URL != "http://127.0.0.1:8080" {
		t.Errorf("Merge() openapi %q, info %+v, servers %v", doc.OpenAPI, doc.Info, doc.Servers)
	}
	wantPaths := []string{"/function/bare", "/function/orders", "/function/orders/items/{id}", "/function/users"}
	if got := doc.Paths.Keys(); !slices.Equal(slices.Sorted(slices.Values(got)), wantPaths) {
		t.Errorf("paths = %v, want %v", got, wantPaths)
	}
	// Both Item schemas are kept, each under its function's name.
	orders, users := doc.Components.Schemas["orders.Item"], doc.Components.Schemas["users.Item"]
	if orders == nil || users == nil {
		t.Fatalf("schemas = %v, want orders.Item and users.Item", keys(doc.Components.Schemas))
	}
	if !slices.Equal(orders.Value.Required, []string{"sku", "quantity"}) || !slices.Equal(users.Value.Required, []string{"email"}) {
		t.Errorf("orders.Item required %v, users.Item required %v", orders.Value.Required, users.Value.Required)
	}
	get := doc.Paths.Value("/function/orders/items/{id}").Get
	if ref := get.Responses.Value("200").Value.Content["application/json"].Schema.Ref; ref != "#/components/schemas/orders.Item" {
		t.Errorf("orders get 200 $ref = %q", ref)
	}
	if ref := get.Responses.Value("404").Ref; ref != "#/components/responses/orders.NotFound" {
		t.Errorf("orders get 404 $ref = %q", ref)
	}
	if get.OperationID != "orders.get" || !slices.Equal(get.Tags, []string{"orders"}) {
		t.Errorf("orders get: operationId %q, tags %v", get.OperationID, get.Tags)
	}
	// The fragment's security applies to each of its operations, renamed.
	if get.Security == nil || len(*get.Security) != 1 || (*get.Security)[0]["orders.apiKey"] == nil {
		t.Errorf("orders get security = %v, want orders.apiKey", get.Security)
	}
	post := doc.Paths.Value("/function/users").Post
	if ref := post.RequestBody.Value.Content["application/json"].Schema.Ref; ref != "#/components/schemas/users.Item" {
		t.Errorf("users post body $ref = %q", ref)
	}
	// The external file's Pet came in as a component of users.
	if !slices.ContainsFunc(keys(doc.Components.Schemas), func(k string) bool { return strings.HasPrefix(k, "users.") && strings.Contains(k, "Pet") }) {
		t.Errorf("schemas = %v, want users' Pet", keys(doc.Components.Schemas))
	}
	bare := doc.Paths.Value("/function/bare").Post
	if bare == nil || bare.Extensions[UndocumentedExtension] != true {
		t.Errorf("bare = %+v, want a POST marked %s", bare, UndocumentedExtension)
	}
	if len(doc.Tags) != 3 || doc.Tags[0].Name != "orders" || !strings.Contains(doc.Tags[0].Description, "Takes and lists orders") {
		t.Errorf("tags = %+v", doc.Tags)
	}
	if _, err := Merge(ctx, Info{Title: "x"}, []Function{{Name: "a"}, {Name: "a"}}); err == nil {
		t.Error("Merge() of a function named twice = nil, want an error")
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func TestLoadFragmentErrors(t *testing.T) {
	tests := []struct {
		file, want string
	}{
		{"syntax.yaml", "testdata/bad/syntax.yaml:7: "},
		{"missing-ref.yaml", "testdata/bad/missing-ref.yaml: "},
		{"version.yaml", `testdata/bad/version.yaml: openapi "3.1.0": want 3.0.x`},
		{"swagger.yaml", "testdata/bad/swagger.yaml: swagger 2.0"},
		{"no-responses.yaml", "testdata/bad/no-responses.yaml: "},
		{"type.json", "testdata/bad/type.json: "},
		{"list.yaml", "testdata/bad/list.yaml: want an OpenAPI document"},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			_, err := LoadFragment(context.Background(), filepath.Join("testdata", "bad", tc.file))
			var fe *FragmentError
			if !errors.As(err, &fe) || !strings.HasPrefix(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
				t.Errorf("LoadFragment() = %v, want a one-line *FragmentError starting %q", err, tc.want)
			}
		})
	}
}
