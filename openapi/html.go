package openapi

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
)

//go:embed page.html
var pageHTML string

var pageTemplate = template.Must(template.New("page").Parse(pageHTML))

// The view of a document the page renders.
type (
	pageView struct {
		Title, Description, Version, OpenAPI, Server string
		// Back and BackText link to the page that embeds this one.
		Back, BackText string
		Groups         []*groupView
		Schemas        []schemaView
	}
	groupView struct {
		Name, Description      string
		Inferred, Undocumented bool
		Ops                    []opView
	}
	opView struct {
		ID, Method, Lower, Path, Summary, Description string
		Inferred, Undocumented                        bool
		Params                                        []paramView
		Request                                       []mediaView
		RequestRequired, HasBody                      bool
		Responses                                     []responseView
		TryType, TryBody                              string
	}
	paramView struct {
		Name, In, Schema, Description string
		Required                      bool
	}
	mediaView    struct{ Type, Schema, Example string }
	responseView struct {
		Code, Description string
		Media             []mediaView
	}
	schemaView struct{ Name, Anchor, JSON string }
)

// HTMLOption changes the page HTML writes.
type HTMLOption func(*pageView)

// WithBackLink puts a link to href, reading text, at the top of the page,
// for a page served inside another, as the console serves it.
func WithBackLink(href, text string) HTMLOption {
	return func(v *pageView) { v.Back, v.BackText = href, text }
}

// HTML writes doc as one self-contained page: no script, style or font
// from elsewhere. Operations are grouped by their first tag (a function
// of a merged document), each with its parameters, bodies, schemas,
// examples and a form that sends the request with fetch, to the page's
// own origin when served over HTTP (the gateway), else to the document's
// first server.
func HTML(w io.Writer, doc *openapi3.T, opts ...HTMLOption) error {
	v := pageView{OpenAPI: doc.OpenAPI}
	for _, o := range opts {
		o(&v)
	}
	if doc.Info != nil {
		v.Title, v.Description, v.Version = doc.Info.Title, doc.Info.Description, doc.Info.Version
	}
	if len(doc.Servers) > 0 {
		v.Server = doc.Servers[0].URL
	}
	groups := map[string]*groupView{}
	for _, t := range doc.Tags {
		g := &groupView{Name: t.Name, Description: t.Description, Inferred: t.Extensions[InferredExtension] == true, Undocumented: t.Extensions[UndocumentedExtension] == true}
		groups[t.Name] = g
		v.Groups = append(v.Groups, g)
	}
	if doc.Paths != nil {
		for _, path := range slices.Sorted(slices.Values(doc.Paths.Keys())) {
			item := doc.Paths.Value(path)
			for _, method := range methods {
				op := item.GetOperation(method)
				if op == nil {
					continue
				}
				tag := "other"
				if len(op.Tags) > 0 {
					tag = op.Tags[0]
				}
				g := groups[tag]
				if g == nil {
					g = &groupView{Name: tag}
					groups[tag] = g
					v.Groups = append(v.Groups, g)
				}
				g.Ops = append(g.Ops, opViewOf(method, path, item, op))
			}
		}
	}
	if doc.Components != nil {
		for _, name := range slices.Sorted(maps.Keys(doc.Components.Schemas)) {
			v.Schemas = append(v.Schemas, schemaView{Name: name, Anchor: "schema-" + name, JSON: indent(doc.Components.Schemas[name])})
		}
	}
	var buf bytes.Buffer
	if err := pageTemplate.Execute(&buf, v); err != nil {
		return fmt.Errorf("rendering the API page: %w", err)
	}
	_, err := w.Write(buf.Bytes())
	return err
}

func opViewOf(method, path string, item *openapi3.PathItem, op *openapi3.Operation) opView {
	o := opView{
		ID: "op-" + strings.ToLower(method) + "-" + strings.NewReplacer("/", "-", "{", "", "}", "").Replace(path), Method: method, Lower: strings.ToLower(method), Path: path,
		Summary: op.Summary, Description: op.Description,
		Inferred: op.Extensions[InferredExtension] == true, Undocumented: op.Extensions[UndocumentedExtension] == true,
	}
	for _, p := range append(slices.Clone(item.Parameters), op.Parameters...) {
		if p == nil || p.Value == nil {
			continue
		}
		pv := paramView{Name: p.Value.Name, In: p.Value.In, Required: p.Value.Required, Description: p.Value.Description}
		if p.Value.Schema != nil {
			pv.Schema = compact(p.Value.Schema)
		}
		o.Params = append(o.Params, pv)
	}
	if rb := op.RequestBody; rb != nil && rb.Value != nil {
		o.Request, o.RequestRequired = mediaViews(rb.Value.Content), rb.Value.Required
		o.HasBody = true
		if len(o.Request) > 0 {
			o.TryType, o.TryBody = o.Request[0].Type, o.Request[0].Example
			if strings.Contains(o.TryType, "*") {
				o.TryType = ""
			}
		}
	}
	if op.Responses != nil {
		codes := slices.Sorted(maps.Keys(op.Responses.Map()))
		for _, code := range codes {
			r := op.Responses.Value(code)
			rv := responseView{Code: code}
			if r.Ref != "" {
				rv.Description = r.Ref
			}
			if r.Value != nil {
				if r.Value.Description != nil {
					rv.Description = *r.Value.Description
				}
				rv.Media = mediaViews(r.Value.Content)
			}
			o.Responses = append(o.Responses, rv)
		}
	}
	if !o.HasBody && method != http.MethodGet && method != http.MethodHead && method != http.MethodDelete {
		o.HasBody = true
	}
	return o
}

func mediaViews(c openapi3.Content) []mediaView {
	var out []mediaView
	for _, mt := range slices.Sorted(maps.Keys(c)) {
		m := c[mt]
		mv := mediaView{Type: mt}
		if m.Schema != nil {
			mv.Schema = indent(m.Schema)
		}
		switch {
		case m.Example != nil:
			mv.Example = indent(m.Example)
		case m.Schema != nil && m.Schema.Value != nil && m.Schema.Value.Example != nil:
			mv.Example = indent(m.Schema.Value.Example)
		default:
			for _, name := range slices.Sorted(maps.Keys(m.Examples)) {
				if e := m.Examples[name]; e.Value != nil && e.Value.Value != nil {
					mv.Example = indent(e.Value.Value)
					break
				}
			}
		}
		out = append(out, mv)
	}
	return out
}

func indent(v any) string {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

func compact(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}
