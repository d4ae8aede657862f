package openapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/getkin/kin-openapi/openapi3"
)

// Exchange is one call of a function, as the gateway saw it.
type Exchange struct {
	// Function is the function's name.
	Function string
	// Method and Path are the request's; Path is what follows
	// /function/<name>, "/" at least.
	Method, Path string
	Query        url.Values
	// RequestContentType and RequestBody are the request's Content-Type
	// and its first bytes; RequestTruncated says there was more.
	RequestContentType string
	RequestBody        []byte
	RequestTruncated   bool
	// Status, ResponseContentType, ResponseBody and ResponseTruncated are
	// the answer's, as for the request.
	Status              int
	ResponseContentType string
	ResponseBody        []byte
	ResponseTruncated   bool
}

// Bounds of what an Inferrer keeps, so that its memory stays bounded
// whatever the traffic.
const (
	// MaxBody is the most of a body worth capturing: a longer one is
	// truncated, and a truncated JSON body is not read.
	MaxBody = 64 << 10
	// maxFunctions, maxOperations (method and path) per function and
	// maxQueryKeys per operation: the ones beyond are not recorded.
	maxFunctions  = 512
	maxOperations = 64
	maxQueryKeys  = 32
	// maxStatuses and maxMediaTypes bound an operation's answers and the
	// media types of each answer (or of its requests).
	maxStatuses   = 32
	maxMediaTypes = 8
	// maxSamples is how many bodies of one operation, status and media
	// type are read for their schema; later ones only count.
	maxSamples = 50
	// maxExample is the largest body kept as an example.
	maxExample = 4 << 10
)

// Inferrer builds each function's OpenAPI fragment from the exchanges it
// observes. It is safe for concurrent use.
type Inferrer struct {
	mu  sync.Mutex
	fns map[string]*observed
}

// NewInferrer returns an Inferrer that has seen nothing.
func NewInferrer() *Inferrer { return &Inferrer{fns: map[string]*observed{}} }

type observed struct {
	calls int
	ops   map[string]*operation // by method and templated path
}

type operation struct {
	method, path string
	calls        int
	params       []*param // the path's, in order
	query        map[string]*param
	withBody     int
	requests     map[string]*body
	responses    map[int]map[string]*body // by status, then media type ("" for none)
}

type param struct {
	name   string
	nonInt bool // a value that is not an integer was seen
}

type body struct {
	samples int
	kind    string // json, text or binary
	shape   *shape
	example any
}

// methods are the methods an OpenAPI 3.0 path item has an operation for.
var methods = []string{http.MethodGet, http.MethodPut, http.MethodPost, http.MethodDelete, http.MethodOptions, http.MethodHead, http.MethodPatch, http.MethodTrace}

// Observe records ex.
func (inf *Inferrer) Observe(ex Exchange) {
	method := strings.ToUpper(ex.Method)
	if !slices.Contains(methods, method) || strings.ContainsAny(ex.Path, "{}") || !strings.HasPrefix(ex.Path, "/") {
		return
	}
	path, ids := templatePath(ex.Path)
	reqType, reqKind, reqValue, reqOK := readBody(ex.RequestContentType, ex.RequestBody, ex.RequestTruncated)
	respType, respKind, respValue, respOK := readBody(ex.ResponseContentType, ex.ResponseBody, ex.ResponseTruncated)

	inf.mu.Lock()
	defer inf.mu.Unlock()
	fn := inf.fns[ex.Function]
	if fn == nil {
		if len(inf.fns) >= maxFunctions {
			return
		}
		fn = &observed{ops: map[string]*operation{}}
		inf.fns[ex.Function] = fn
	}
	key := method + " " + path
	op := fn.ops[key]
	if op == nil {
		if len(fn.ops) >= maxOperations {
			return
		}
		op = &operation{method: method, path: path, query: map[string]*param{}, requests: map[string]*body{}, responses: map[int]map[string]*body{}}
		for i := range ids {
			op.params = append(op.params, &param{name: idName(i)})
		}
		fn.ops[key] = op
	}
	fn.calls++
	op.calls++
	for i, id := range ids {
		if !isInt(id) {
			op.params[i].nonInt = true
		}
	}
	for k, vs := range ex.Query {
		q := op.query[k]
		if q == nil {
			if len(op.query) >= maxQueryKeys {
				continue
			}
			q = &param{name: k}
			op.query[k] = q
		}
		for _, v := range vs {
			if !isInt(v) {
				q.nonInt = true
			}
		}
	}
	if reqType != "" {
		op.withBody++
		addBody(op.requests, reqType, reqKind, reqValue, reqOK)
	}
	byType := op.responses[ex.Status]
	if byType == nil {
		if len(op.responses) >= maxStatuses {
			return
		}
		byType = map[string]*body{}
		op.responses[ex.Status] = byType
	}
	addBody(byType, respType, respKind, respValue, respOK)
}

func addBody(m map[string]*body, mediaType, kind string, v any, ok bool) {
	b := m[mediaType]
	if b == nil {
		if len(m) >= maxMediaTypes {
			return
		}
		b = &body{kind: kind, shape: &shape{}}
		m[mediaType] = b
	}
	if !ok || b.samples >= maxSamples {
		return
	}
	if b.samples == 0 {
		if e, err := json.Marshal(v); err == nil && len(e) <= maxExample {
			b.example = v
		}
	}
	b.samples++
	b.shape.add(v, 0)
}

// readBody returns a body's media type ("" for no body), its kind and,
// for a whole JSON body, its value.
func readBody(contentType string, b []byte, truncated bool) (string, string, any, bool) {
	if len(b) == 0 && !truncated {
		return "", "", nil, false
	}
	mt, _, err := mime.ParseMediaType(contentType)
	switch {
	case contentType == "" && !truncated && json.Valid(b):
		// Sent without a type, as by many a client: JSON all the same.
		mt = "application/json"
	case err != nil || mt == "":
		mt = "application/octet-stream"
	}
	switch {
	case mt == "application/json" || strings.HasSuffix(mt, "+json"):
		if truncated {
			return mt, "json", nil, false
		}
		var v any
		dec := json.NewDecoder(bytes.NewReader(b))
		if err := dec.Decode(&v); err != nil || dec.More() {
			return mt, "json", nil, false
		}
		return mt, "json", v, true
	case strings.HasPrefix(mt, "text/") || mt == "application/xml" || strings.HasSuffix(mt, "+xml") || mt == "application/x-www-form-urlencoded":
		return mt, "text", nil, false
	default:
		return mt, "binary", nil, false
	}
}

var (
	digitsRE = regexp.MustCompile(`^[0-9]+$`)
	hexRE    = regexp.MustCompile(`^[0-9a-fA-F]{16,}$`)
)

// isID reports whether a path segment is obviously an id: a number, a
// UUID, or a long hex string with a digit in it (a hash, an ObjectId).
func isID(seg string) bool {
	return digitsRE.MatchString(seg) || uuidRE.MatchString(seg) || (hexRE.MatchString(seg) && strings.ContainsAny(seg, "0123456789"))
}

func isInt(s string) bool {
	_, err := strconv.ParseInt(s, 10, 64)
	return err == nil
}

// idName names the i-th id of a path: id, id2, id3...
func idName(i int) string {
	if i == 0 {
		return "id"
	}
	return "id" + strconv.Itoa(i+1)
}

// templatePath replaces the id segments of path with {id}, {id2}...,
// and returns the ids it replaced.
func templatePath(path string) (string, []string) {
	segs := strings.Split(path, "/")
	var ids []string
	for i, s := range segs {
		if s != "" && isID(s) {
			segs[i] = "{" + idName(len(ids)) + "}"
			ids = append(ids, s)
		}
	}
	return strings.Join(segs, "/"), ids
}

// Functions returns the names of the functions observed, sorted.
func (inf *Inferrer) Functions() []string {
	inf.mu.Lock()
	defer inf.mu.Unlock()
	return slices.Sorted(maps.Keys(inf.fns))
}

// Document returns the fragment inferred for function name, false when
// none of its calls was observed. The document and its operations carry
// x-kiln-inferred: true.
func (inf *Inferrer) Document(name string) (*openapi3.T, bool) {
	inf.mu.Lock()
	defer inf.mu.Unlock()
	fn := inf.fns[name]
	if fn == nil {
		return nil, false
	}
	doc := &openapi3.T{
		OpenAPI: "3.0.3",
		Info: &openapi3.Info{
			Title:       name,
			Version:     "inferred",
			Description: fmt.Sprintf("Inferred by kiln from %d calls through the gateway. `kiln docs --save-inferred %s` keeps it as the function's openapi.yaml, to edit.", fn.calls, name),
			Extensions:  map[string]any{InferredExtension: true},
		},
		Paths: openapi3.NewPaths(),
	}
	for _, key := range slices.Sorted(maps.Keys(fn.ops)) {
		op := fn.ops[key]
		item := doc.Paths.Value(op.path)
		if item == nil {
			item = &openapi3.PathItem{}
			doc.Paths.Set(op.path, item)
		}
		item.SetOperation(op.method, op.document())
	}
	return doc, true
}

// InferredExtension marks what an Inferrer wrote: a fragment's info and
// operations, and a merged document's tag of an inferred function.
const InferredExtension = "x-kiln-inferred"

func (op *operation) document() *openapi3.Operation {
	o := &openapi3.Operation{
		Summary:    fmt.Sprintf("%s %s (seen %d times)", op.method, op.path, op.calls),
		Extensions: map[string]any{InferredExtension: true},
		Responses:  openapi3.NewResponses(),
	}
	for _, p := range op.params {
		o.Parameters = append(o.Parameters, &openapi3.ParameterRef{Value: openapi3.NewPathParameter(p.name).WithSchema(p.schema())})
	}
	for _, k := range slices.Sorted(maps.Keys(op.query)) {
		o.Parameters = append(o.Parameters, &openapi3.ParameterRef{Value: openapi3.NewQueryParameter(k).WithSchema(op.query[k].schema())})
	}
	if len(op.requests) > 0 {
		o.RequestBody = &openapi3.RequestBodyRef{Value: &openapi3.RequestBody{Required: op.withBody == op.calls, Content: content(op.requests)}}
	}
	for _, status := range slices.Sorted(maps.Keys(op.responses)) {
		desc := http.StatusText(status)
		if desc == "" {
			desc = "Status " + strconv.Itoa(status)
		}
		r := &openapi3.Response{Description: &desc}
		if c := content(op.responses[status]); len(c) > 0 {
			r.Content = c
		}
		o.Responses.Set(strconv.Itoa(status), &openapi3.ResponseRef{Value: r})
	}
	return o
}

func (p *param) schema() *openapi3.Schema {
	if p.nonInt {
		return openapi3.NewStringSchema()
	}
	return openapi3.NewIntegerSchema()
}

func content(bodies map[string]*body) openapi3.Content {
	c := openapi3.Content{}
	for mt, b := range bodies {
		if mt == "" {
			continue
		}
		m := &openapi3.MediaType{}
		switch {
		case b.kind == "json" && b.samples > 0:
			m.Schema = openapi3.NewSchemaRef("", b.shape.schema())
			m.Example = b.example
		case b.kind == "text":
			m.Schema = openapi3.NewSchemaRef("", openapi3.NewStringSchema())
		case b.kind == "binary":
			m.Schema = openapi3.NewSchemaRef("", openapi3.NewStringSchema().WithFormat("binary"))
		}
		c[mt] = m
	}
	return c
}
