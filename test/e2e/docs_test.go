//go:build e2e

package e2e

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
)

// shopHandler is a golang-middleware function with a small JSON API.
const shopHandler = `package function

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
)

// Handle serves /, GET /items/<id> and POST /items.
func Handle(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	switch {
	case r.URL.Path == "/":
		io.WriteString(w, "{\"items\": 2}")
	case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/items/"):
		json.NewEncoder(w).Encode(map[string]any{"id": strings.TrimPrefix(r.URL.Path, "/items/"), "price": 2.5, "tags": []string{"new"}, "note": nil})
	case r.Method == http.MethodPost && r.URL.Path == "/items":
		b, _ := io.ReadAll(r.Body)
		w.WriteHeader(http.StatusCreated)
		w.Write(b)
	default:
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, "{\"error\": \"not found\"}")
	}
}
`

const helloFragment = `paths:
  /:
    post:
      summary: Greets you back
      requestBody:
        content:
          text/plain:
            schema: {type: string}
      responses:
        "200":
          description: The greeting
          content:
            text/plain:
              schema: {type: string}
`

func loadOpenAPI(t *testing.T, b []byte) *openapi3.T {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(b)
	if err != nil {
		t.Fatalf("loading the document: %v\n%s", err, b)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("Validate() = %v\n%s", err, b)
	}
	return doc
}

// TestDocs: kiln docs merges a stack's fragments; kiln up --local infers
// the API of a function without one from its calls and serves the
// document at /system/openapi.json; kiln docs --save-inferred keeps what
// it inferred as the function's openapi.yaml, which kiln docs then uses.
func TestDocs(t *testing.T) {
	dir := stackProject(t, map[string]string{"hello": goHello}, `provider:
  name: openfaas
functions:
  hello:
    lang: golang-middleware
    handler: ./hello
    image: `+unusedRegistry(t)+`/hello
  shop:
    lang: golang-middleware
    handler: ./shop
    image: `+unusedRegistry(t)+`/shop
`)
	os.MkdirAll(filepath.Join(dir, "shop"), 0o755)
	writeFile(t, filepath.Join(dir, "shop", "go.mod"), []byte("module handler/function\n\ngo 1.24.0\n"))
	writeFile(t, filepath.Join(dir, "shop", "handler.go"), []byte(shopHandler))
	writeFile(t, filepath.Join(dir, "hello", "openapi.yaml"), []byte(helloFragment))
	faasConfig, configHome := t.TempDir(), t.TempDir()
	o := kilnOpts{cache: warmCache, dir: dir, env: []string{"OPENFAAS_CONFIG=" + faasConfig, "XDG_CONFIG_HOME=" + configHome}}

	mustKiln(t, o, "docs", "--output", "api.json")
	doc := loadOpenAPI(t, readFile(t, filepath.Join(dir, "api.json")))
	if op := doc.Paths.Value("/function/shop").Post; op == nil || op.Extensions["x-kiln-undocumented"] != true {
		t.Errorf("kiln docs before any call: shop = %+v, want an undocumented operation", op)
	}
	if op := doc.Paths.Value("/function/hello").Post; op == nil || op.Summary != "Greets you back" {
		t.Errorf("kiln docs: hello = %+v, want its fragment's POST", op)
	}

	port := freePort(t)
	up := startProcess(t, kilnCommand(t.Context(), o, "up", "--local", "--port", strconv.Itoa(port)))
	waitFunction(t, up, port, "hello")
	waitFunction(t, up, port, "shop")
	for _, c := range []struct{ method, path, body string }{
		{http.MethodGet, "/function/shop/items/1", ""},
		{http.MethodGet, "/function/shop/items/22?verbose=true", ""},
		{http.MethodPost, "/function/shop/items", `{"name": "lamp", "count": 2}`},
	} {
		a, err := callAs(c.method, port, c.path, c.body, map[string]string{"Content-Type": "application/json"})
		if err != nil || a.status >= 300 {
			t.Fatalf("%s %s = %v, %v\n%s", c.method, c.path, a, err, up)
		}
	}
	login := gatewayLogin(t, faasConfig, port)
	a, err := callAs(http.MethodGet, port, "/system/openapi.json", "", map[string]string{"Authorization": login})
	if err != nil || a.status != 200 {
		t.Fatalf("GET /system/openapi.json = %v, %v", a, err)
	}
	doc = loadOpenAPI(t, []byte(a.body))
	get := doc.Paths.Value("/function/shop/items/{id}")
	if get == nil || get.Get == nil || get.Get.Extensions["x-kiln-inferred"] != true {
		t.Fatalf("the gateway's document: paths %v, want the inferred /function/shop/items/{id}", doc.Paths.Keys())
	}
	schema := get.Get.Responses.Value("200").Value.Content["application/json"].Schema.Value
	if !slices.Equal(schema.Required, []string{"id", "note", "price", "tags"}) || !schema.Properties["note"].Value.Nullable {
		t.Errorf("GET /items/{id} answer schema = %+v, want id, note (nullable), price, tags", schema)
	}
	if doc.Paths.Value("/function/hello").Post.Summary != "Greets you back" {
		t.Error("the gateway's document: hello is not its fragment")
	}

	r := mustKiln(t, o, "docs", "--save-inferred", "shop", "--gateway", "http://127.0.0.1:"+strconv.Itoa(port))
	saved := filepath.Join(dir, "shop", "openapi.yaml")
	if strings.TrimSpace(r.stdout) != saved {
		t.Errorf("kiln docs --save-inferred printed %q, want %s", r.stdout, saved)
	}
	r = kiln(t, o, "docs", "--save-inferred", "hello", "--gateway", "http://127.0.0.1:"+strconv.Itoa(port))
	if r.code != 2 || !strings.Contains(r.stderr, "--force") {
		t.Errorf("kiln docs --save-inferred over a hand-written fragment: %s\nwant exit 2 asking for --force", r)
	}
	up.stop(t)

	mustKiln(t, o, "docs", "--format", "html", "--output", "api.html")
	page := string(readFile(t, filepath.Join(dir, "api.html")))
	for _, p := range []string{"/function/shop/items/{id}", "/function/shop/items", "/function/hello"} {
		if !strings.Contains(page, ">"+p+"<") {
			t.Errorf("api.html lacks %s", p)
		}
	}
	mustKiln(t, o, "docs", "--output", "api.json")
	doc = loadOpenAPI(t, readFile(t, filepath.Join(dir, "api.json")))
	if op := doc.Paths.Value("/function/shop/items"); op == nil || op.Post == nil {
		t.Errorf("kiln docs after --save-inferred: paths %v, want shop's POST /items", doc.Paths.Keys())
	}
}
