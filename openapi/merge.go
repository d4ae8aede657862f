package openapi

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
)

// Info describes the merged document.
type Info struct {
	// Title and Version are the document's info; Version defaults to
	// "1.0.0".
	Title, Version, Description string
	// Server is the gateway's URL, "" when not known.
	Server string
}

// Function is one function of a merged document.
type Function struct {
	// Name is the function's name; its paths go under /function/<Name>.
	Name string
	// Doc is its fragment (LoadFragment, or an Inferrer's Document); nil
	// gives one minimal operation, marked x-kiln-undocumented.
	Doc *openapi3.T
}

// UndocumentedExtension marks the operation Merge makes for a function
// without a fragment.
const UndocumentedExtension = "x-kiln-undocumented"

// componentKinds are the kinds of an OpenAPI 3.0 document's components.
var componentKinds = []string{"schemas", "responses", "parameters", "examples", "requestBodies", "headers", "securitySchemes", "links", "callbacks"}

// Merge joins the functions' fragments into one OpenAPI 3.0.3 document:
// each function's paths under /function/<name> ("/" is /function/<name>
// itself), a tag per function on each of its operations, its components
// renamed <name>.<component> (and every $ref, security requirement and
// discriminator mapping to them), its operationIds prefixed <name>., and
// the security its fragment sets for all set on each operation that has
// none. The result has passed kin-openapi's validation.
func Merge(ctx context.Context, info Info, fns []Function) (*openapi3.T, error) {
	if info.Version == "" {
		info.Version = "1.0.0"
	}
	docInfo := map[string]any{"title": info.Title, "version": info.Version}
	if info.Description != "" {
		docInfo["description"] = info.Description
	}
	out := map[string]any{"openapi": "3.0.3", "info": docInfo}
	if info.Server != "" {
		out["servers"] = []any{map[string]any{"url": info.Server, "description": "the OpenFaaS gateway"}}
	}
	paths := map[string]any{}
	components := map[string]any{}
	var tags []any
	seen := map[string]bool{}
	for _, fn := range fns {
		if seen[fn.Name] {
			return nil, fmt.Errorf("merging the OpenAPI documents: function %s is named twice", fn.Name)
		}
		seen[fn.Name] = true
		tag, err := mergeFunction(fn, paths, components)
		if err != nil {
			return nil, fmt.Errorf("merging the OpenAPI document of %s: %w", fn.Name, err)
		}
		tags = append(tags, tag)
	}
	out["paths"] = paths
	if len(tags) > 0 {
		out["tags"] = tags
	}
	if len(components) > 0 {
		out["components"] = components
	}
	data, err := json.Marshal(out)
	if err != nil {
		return nil, fmt.Errorf("merging the OpenAPI documents: %w", err)
	}
	loader := openapi3.NewLoader()
	loader.Context = ctx
	doc, err := loader.LoadFromData(data)
	if err != nil {
		return nil, fmt.Errorf("merging the OpenAPI documents: %w", err)
	}
	if err := doc.Validate(ctx); err != nil {
		return nil, fmt.Errorf("the merged OpenAPI document: %w", err)
	}
	return doc, nil
}

// mergeFunction adds fn's paths and components and returns its tag.
func mergeFunction(fn Function, paths, components map[string]any) (map[string]any, error) {
	tag := map[string]any{"name": fn.Name}
	root := "/function/" + fn.Name
	if fn.Doc == nil || fn.Doc.Paths == nil || fn.Doc.Paths.Len() == 0 {
		paths[root] = undocumented(fn.Name)
		tag["description"] = "No OpenAPI fragment and no calls seen yet."
		tag[UndocumentedExtension] = true
		return tag, nil
	}
	var m map[string]any
	b, err := json.Marshal(fn.Doc)
	if err == nil {
		err = json.Unmarshal(b, &m)
	}
	if err != nil {
		return nil, err
	}
	prefix := fn.Name + "."
	renameRefs(m, prefix)
	if info, ok := m["info"].(map[string]any); ok {
		desc, _ := info["description"].(string)
		if title, _ := info["title"].(string); title != "" && title != fn.Name {
			desc = strings.TrimSpace(title + "\n\n" + desc)
		}
		if desc != "" {
			tag["description"] = desc
		}
		if v, _ := info[InferredExtension].(bool); v {
			tag[InferredExtension] = true
		}
	}
	security, hasSecurity := m["security"]
	docPaths, _ := m["paths"].(map[string]any)
	for _, p := range slices.Sorted(maps.Keys(docPaths)) {
		item, _ := docPaths[p].(map[string]any)
		for _, method := range []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"} {
			op, ok := item[method].(map[string]any)
			if !ok {
				continue
			}
			op["tags"] = []any{fn.Name}
			if id, ok := op["operationId"].(string); ok && id != "" {
				op["operationId"] = prefix + id
			}
			if _, ok := op["security"]; !ok && hasSecurity {
				op["security"] = security
			}
		}
		full := root + p
		if p == "/" {
			full = root
		}
		paths[full] = item
	}
	if comps, ok := m["components"].(map[string]any); ok {
		for _, kind := range componentKinds {
			byName, _ := comps[kind].(map[string]any)
			if len(byName) == 0 {
				continue
			}
			dst, _ := components[kind].(map[string]any)
			if dst == nil {
				dst = map[string]any{}
				components[kind] = dst
			}
			for name, v := range byName {
				dst[prefix+name] = v
			}
		}
	}
	return tag, nil
}

// undocumented is the path item of a function without a fragment: one
// POST that takes and answers anything.
func undocumented(name string) map[string]any {
	return map[string]any{"post": map[string]any{
		"tags":                []any{name},
		"summary":             "Invoke " + name,
		"description":         "No OpenAPI fragment: add openapi.yaml to the function's handler folder (or name one with the kiln/openapi annotation), or call it through `kiln dev` and keep what kiln infers with `kiln docs --save-inferred " + name + "`.",
		UndocumentedExtension: true,
		"requestBody": map[string]any{"content": map[string]any{
			"*/*": map[string]any{"schema": map[string]any{"type": "string", "format": "binary"}},
		}},
		"responses": map[string]any{"default": map[string]any{"description": "The function's answer"}},
	}}
}

// skipKeys hold values, not document structure: a $ref in them is data.
var skipKeys = map[string]bool{"example": true, "default": true, "enum": true}

// renameRefs rewrites, in the document v, each reference to a component
// (a $ref "#/components/<kind>/<name>", a security requirement, a
// discriminator mapping) to the component's new name, prefix + name.
func renameRefs(v any, prefix string) {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			switch {
			case skipKeys[k] || strings.HasPrefix(k, "x-"):
				continue
			case k == "$ref":
				if s, ok := x.(string); ok {
					v[k] = renameRef(s, prefix)
				}
				continue
			case k == "security":
				if reqs, ok := x.([]any); ok {
					for i, r := range reqs {
						if rm, ok := r.(map[string]any); ok {
							renamed := map[string]any{}
							for name, scopes := range rm {
								renamed[prefix+name] = scopes
							}
							reqs[i] = renamed
						}
					}
					continue
				}
			case k == "mapping":
				if mm, ok := x.(map[string]any); ok {
					for name, target := range mm {
						if s, ok := target.(string); ok {
							if strings.Contains(s, "/") {
								mm[name] = renameRef(s, prefix)
							} else {
								mm[name] = prefix + s
							}
						}
					}
					continue
				}
			}
			renameRefs(x, prefix)
		}
	case []any:
		for _, x := range v {
			renameRefs(x, prefix)
		}
	}
}

func renameRef(ref, prefix string) string {
	rest, ok := strings.CutPrefix(ref, "#/components/")
	if !ok {
		return ref
	}
	kind, name, ok := strings.Cut(rest, "/")
	if !ok {
		return ref
	}
	return "#/components/" + kind + "/" + prefix + name
}
