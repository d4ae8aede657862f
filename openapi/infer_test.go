package openapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
)

// sample is one exchange of testdata/exchanges.json: JSON bodies as
// values (req, resp), others as text (reqText, respText).
type sample struct {
	Method, Path      string
	Query             url.Values
	ReqType, RespType string
	Req, Resp         json.RawMessage
	ReqText, RespText string
	Status            int
}

func (s sample) exchange(fn string) Exchange {
	ex := Exchange{Function: fn, Method: s.Method, Path: s.Path, Query: s.Query, RequestContentType: s.ReqType, Status: s.Status, ResponseContentType: s.RespType}
	ex.RequestBody, ex.ResponseBody = []byte(s.ReqText), []byte(s.RespText)
	if s.Req != nil {
		ex.RequestBody = s.Req
	}
	if s.Resp != nil {
		ex.ResponseBody = s.Resp
	}
	return ex
}

func readSamples(t *testing.T) []sample {
	t.Helper()
	b, err := os.ReadFile("testdata/exchanges.json")
	if err != nil {
		t.Fatal(err)
	}
	var out []sample
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestInferrer(t *testing.T) {
	samples := readSamples(t)
	inf := NewInferrer()
	var wg sync.WaitGroup
	for _, s := range samples {
		wg.Go(func() { inf.Observe(s.exchange("shop")) })
	}
	wg.Wait()
	doc, ok := inf.Document("shop")
	if !ok {
		t.Fatal("Document(shop) = false")
	}
	if err := doc.Validate(context.Background()); err != nil {
		b, _ := json.MarshalIndent(doc, "", "  ")
		t.Fatalf("Validate() = %v\n%s", err, b)
	}
	if doc.Info.Extensions[InferredExtension] != true {
		t.Errorf("info extensions = %v, want %s", doc.Info.Extensions, InferredExtension)
	}
	wantPaths := []string{"/", "/blobs/{id}", "/orders", "/orders/{id}"}
	if got := slices.Sorted(slices.Values(doc.Paths.Keys())); !slices.Equal(got, wantPaths) {
		t.Errorf("paths = %v, want %v", got, wantPaths)
	}
	// Every body is accepted by the schema inferred from it.
	for i, s := range samples {
		op := doc.Paths.Find(mustTemplate(s.Path)).GetOperation(s.Method)
		if op == nil || op.Extensions[InferredExtension] != true {
			t.Fatalf("sample %d: no inferred %s %s", i, s.Method, s.Path)
		}
		if s.Req != nil {
			checkBody(t, fmt.Sprintf("sample %d request", i), op.RequestBody.Value.Content, s.ReqType, s.Req)
		}
		resp := op.Responses.Value(strconv.Itoa(s.Status))
		if resp == nil {
			t.Fatalf("sample %d: no response %d", i, s.Status)
		}
		if s.Resp != nil {
			checkBody(t, fmt.Sprintf("sample %d response", i), resp.Value.Content, s.RespType, s.Resp)
		}
	}
	post := doc.Paths.Value("/orders").Post
	req := post.RequestBody.Value.Content["application/json"].Schema.Value
	// An object or an array was sent: anyOf the two.
	if len(req.AnyOf) != 2 {
		t.Fatalf("POST /orders request schema = %s, want anyOf object, array", dump(req))
	}
	obj := req.AnyOf[0].Value
	if !slices.Equal(obj.Required, []string{"quantity", "sku", "tags"}) || !obj.Properties["tags"].Value.Nullable {
		t.Errorf("request required = %v, want the keys of every sample", obj.Required)
	}
	if !obj.Properties["note"].Value.Nullable || !obj.Properties["note"].Value.Type.Is("string") {
		t.Errorf("note = %s, want a nullable string", dump(obj.Properties["note"].Value))
	}
	zip := obj.Properties["address"].Value.Properties["zip"].Value
	if len(zip.AnyOf) != 2 {
		t.Errorf("zip = %s, want anyOf integer, string", dump(zip))
	}
	created := post.Responses.Value("201").Value.Content["application/json"].Schema.Value.Properties["created"].Value
	if created.Format != "date-time" {
		t.Errorf("created = %s, want a date-time", dump(created))
	}
	total := post.Responses.Value("201").Value.Content["application/json"].Schema.Value.Properties["total"].Value
	if !total.Type.Is("number") {
		t.Errorf("total = %s, want a number (19.5 and 7)", dump(total))
	}
	get := doc.Paths.Value("/orders/{id}").Get
	var params []string
	for _, p := range get.Parameters {
		params = append(params, p.Value.In+":"+p.Value.Name+":"+strings.Join(*p.Value.Schema.Value.Type, ""))
	}
	// 17, 18 and a UUID: the id is a string; limit was 5 and x.
	if want := []string{"path:id:string", "query:expand:string", "query:limit:string"}; !slices.Equal(params, want) {
		t.Errorf("GET /orders/{id} parameters = %v, want %v", params, want)
	}
	if _, ok := get.Responses.Value("404").Value.Content["text/plain"]; !ok {
		t.Errorf("GET /orders/{id} 404 = %s, want text/plain", dump(get.Responses.Value("404").Value))
	}
	if del := doc.Paths.Value("/orders/{id}").Delete; del.Parameters[0].Value.Schema.Value.Type.Is("integer") != true || len(del.Responses.Value("204").Value.Content) != 0 {
		t.Errorf("DELETE /orders/{id} = %s, want an integer id and a 204 without content", dump(del))
	}
	if _, ok := inf.Document("other"); ok {
		t.Error("Document(other) = true, want false: never called")
	}
	// A merged document of it validates too.
	if _, err := Merge(context.Background(), Info{Title: "t"}, []Function{{Name: "shop", Doc: doc}}); err != nil {
		t.Errorf("Merge() = %v", err)
	}
}

func checkBody(t *testing.T, what string, c openapi3.Content, contentType string, body []byte) {
	t.Helper()
	mt := c.Get(contentType)
	if mt == nil || mt.Schema == nil {
		t.Fatalf("%s: no schema for %s in %s", what, contentType, dump(c))
	}
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatal(err)
	}
	if err := mt.Schema.Value.VisitJSON(v); err != nil {
		t.Errorf("%s: the schema %s refuses %s: %v", what, dump(mt.Schema.Value), body, err)
	}
}

func mustTemplate(p string) string {
	s, _ := templatePath(p)
	return s
}

func dump(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestTemplatePath(t *testing.T) {
	tests := []struct {
		path, want string
		ids        int
	}{
		{"/", "/", 0},
		{"/items", "/items", 0},
		{"/items/42", "/items/{id}", 1},
		{"/items/42/", "/items/{id}/", 1},
		{"/users/7/posts/3f2b9c1e-8d4a-4b6e-9f0a-1c2d3e4f5a6b", "/users/{id}/posts/{id2}", 2},
		{"/commits/9f86d081884c7d659a2feaa0c55ad015a3bf4f1b", "/commits/{id}", 1},
		{"/o/507f1f77bcf86cd799439011", "/o/{id}", 1},
		{"/v2/deadbeefdeadbeef", "/v2/deadbeefdeadbeef", 0}, // hex without a digit: a word
		{"/v2/items", "/v2/items", 0},
		{"/abc123", "/abc123", 0},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			got, ids := templatePath(tc.path)
			if got != tc.want || len(ids) != tc.ids {
				t.Errorf("templatePath(%q) = %q, %v, want %q and %d ids", tc.path, got, ids, tc.want, tc.ids)
			}
		})
	}
}

func TestInferrerBounds(t *testing.T) {
	inf := NewInferrer()
	for i := range 3 * maxOperations {
		inf.Observe(Exchange{Function: "f", Method: "GET", Path: "/p" + strconv.Itoa(i) + "x", Status: 200})
	}
	for i := range 2 * maxSamples {
		body := fmt.Sprintf(`{"k%d": %d}`, i, i)
		inf.Observe(Exchange{Function: "g", Method: "POST", Path: "/", RequestContentType: "application/json", RequestBody: []byte(body), Status: 200})
	}
	// A truncated body is not read, and a method OpenAPI 3.0 lacks is not kept.
	inf.Observe(Exchange{Function: "g", Method: "POST", Path: "/", RequestContentType: "application/json", RequestBody: []byte(`{"cut": `), RequestTruncated: true, Status: 200})
	inf.Observe(Exchange{Function: "g", Method: "PROPFIND", Path: "/", Status: 207})
	f, _ := inf.Document("f")
	if n := f.Paths.Len(); n != maxOperations {
		t.Errorf("paths of f = %d, want %d", n, maxOperations)
	}
	g, _ := inf.Document("g")
	props := g.Paths.Value("/").Post.RequestBody.Value.Content["application/json"].Schema.Value.Properties
	if len(props) != maxSamples {
		t.Errorf("properties of g's body = %d, want the %d sampled", len(props), maxSamples)
	}
	if err := g.Validate(context.Background()); err != nil {
		t.Errorf("Validate() = %v", err)
	}
}
