package project

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"sigs.k8s.io/yaml"

	"github.com/kiln-build/kiln/deploy"
	"github.com/kiln-build/kiln/gateway"
	"github.com/kiln-build/kiln/internal/atomicfile"
	"github.com/kiln-build/kiln/internal/usage"
	"github.com/kiln-build/kiln/openapi"
)

// OpenAPIAnnotation names a function's OpenAPI fragment, relative to the
// stack file's folder, instead of openapi.yaml (.yml, .json) in its
// handler folder.
const OpenAPIAnnotation = "kiln/openapi"

// FragmentPath returns the path of function n's OpenAPI fragment: the
// file its kiln/openapi annotation names, else the one in its handler
// folder; "" when it has none.
func (s *Stack) FragmentPath(n string) (string, error) {
	fn := s.Functions[n]
	if fn.Annotations != nil {
		if p, ok := (*fn.Annotations)[OpenAPIAnnotation]; ok {
			if !filepath.IsAbs(p) {
				p = filepath.Join(filepath.Dir(s.Path), p)
			}
			if _, err := os.Stat(p); err != nil {
				return "", s.FuncError(fn, "annotations", "%s: %v", OpenAPIAnnotation, err)
			}
			return p, nil
		}
	}
	if fn.Handler == "" {
		return "", nil
	}
	dir, err := s.HandlerDir(fn)
	if err != nil {
		return "", err
	}
	return openapi.FindFragment(dir)
}

// apiFunctions returns the named functions for openapi.Merge: each with
// its fragment, else what inferred gives (nil for nothing).
func apiFunctions(ctx context.Context, st *Stack, names []string, inferred func(string) *openapi3.T) ([]openapi.Function, error) {
	var out []openapi.Function
	for _, n := range names {
		fn := openapi.Function{Name: n}
		path := ""
		if st != nil && st.Functions[n].Name != "" {
			var err error
			if path, err = st.FragmentPath(n); err != nil {
				return nil, err
			}
		}
		switch {
		case path != "":
			doc, err := openapi.LoadFragment(ctx, path)
			if err != nil {
				return nil, err
			}
			fn.Doc = doc
		case inferred != nil:
			fn.Doc = inferred(n)
		}
		out = append(out, fn)
	}
	return out, nil
}

// apiInfo is the merged document's info for st.
func apiInfo(st *Stack, server string) openapi.Info {
	title := "OpenFaaS functions"
	if st != nil {
		abs, _ := filepath.Abs(st.Path)
		title = filepath.Base(filepath.Dir(abs)) + ": " + title
	}
	return openapi.Info{Title: title, Description: "Each function under /function/<name>, as the OpenFaaS gateway serves it. Written by kiln.", Server: server}
}

// DocsSettings are what kiln docs writes.
type DocsSettings struct {
	// Format is "openapi" (JSON, YAML when Output ends in .yaml or .yml)
	// or "html".
	Format string
	// Output is the file to write, "" or "-" for w.
	Output string
	// Gateway is the --gateway flag: the document's server, else the
	// stack's provider.gateway, else $OPENFAAS_URL; none when all are
	// unset.
	Gateway string
}

// WriteDocs merges the selected functions' fragments into one OpenAPI
// document and writes it, as OpenAPI or as a page. A function without a
// fragment gets a minimal operation marked x-kiln-undocumented.
func (p *Project) WriteDocs(ctx context.Context, w io.Writer, st *Stack, ds DocsSettings) error {
	if ds.Format != "openapi" && ds.Format != "html" {
		return usage.Errorf("--format %q: want openapi or html", ds.Format)
	}
	server := ""
	if env := p.opts.getenv("OPENFAAS_URL"); ds.Gateway != "" || st.Provider.Gateway != "" || env != "" {
		server = deploy.GatewayURL(ds.Gateway, st.Provider.Gateway, env)
	}
	fns, err := apiFunctions(ctx, st, st.Names, nil)
	if err != nil {
		return err
	}
	doc, err := openapi.Merge(ctx, apiInfo(st, server), fns)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	switch {
	case ds.Format == "html":
		err = openapi.HTML(&buf, doc)
	case strings.HasSuffix(ds.Output, ".yaml") || strings.HasSuffix(ds.Output, ".yml"):
		err = writeYAML(&buf, doc)
	default:
		var b []byte
		if b, err = json.MarshalIndent(doc, "", "  "); err == nil {
			buf.Write(append(b, '\n'))
		}
	}
	if err != nil {
		return err
	}
	if ds.Output == "" || ds.Output == "-" {
		_, err = w.Write(buf.Bytes())
		return err
	}
	if err := atomicfile.Write(ds.Output, buf.Bytes()); err != nil {
		return fmt.Errorf("writing the API document: %w", err)
	}
	return nil
}

func writeYAML(w io.Writer, doc any) error {
	b, err := json.Marshal(doc)
	if err == nil {
		b, err = yaml.JSONToYAML(b)
	}
	if err != nil {
		return fmt.Errorf("writing the API document as YAML: %w", err)
	}
	_, err = w.Write(b)
	return err
}

// SaveInferred fetches the fragment the running local gateway inferred
// for function name (from gatewayFlag, else the stack's, else
// $OPENFAAS_URL; logged in as kiln deploy) and writes it as the
// function's fragment: the file its kiln/openapi annotation names, else
// openapi.yaml in its handler folder. A fragment written by hand is kept
// unless force. It returns the file written.
func (p *Project) SaveInferred(ctx context.Context, st *Stack, name, gatewayFlag string, force bool) (string, error) {
	fn, ok := st.Functions[name]
	if !ok {
		return "", usage.Errorf("--save-inferred %s: no such function in %s", name, st.Path)
	}
	path, err := st.FragmentPath(name)
	if err != nil {
		return "", err
	}
	if path != "" && !force {
		if doc, err := openapi.LoadFragment(ctx, path); err != nil || doc.Info.Extensions[openapi.InferredExtension] != true {
			return "", usage.Errorf("--save-inferred %s: %s holds a fragment written by hand; --force replaces it", name, path)
		}
	}
	if path == "" {
		dir, err := st.HandlerDir(fn)
		if err != nil {
			return "", err
		}
		path = filepath.Join(dir, openapi.FragmentNames[0])
	}
	gw := deploy.GatewayURL(gatewayFlag, st.Provider.Gateway, p.opts.getenv("OPENFAAS_URL"))
	dir, err := deploy.ConfigDir(p.opts.getenv)
	if err != nil {
		return "", err
	}
	auth, err := deploy.LookupAuth(dir, gw, "")
	if err != nil {
		return "", err
	}
	c, err := deploy.NewClient(gw, deploy.WithAuth(auth), deploy.WithUserAgent("kiln/"+p.opts.version))
	if err != nil {
		return "", usage.Wrap(err)
	}
	b, err := c.InferredOpenAPI(ctx, name)
	if err != nil {
		return "", fmt.Errorf("fetching what the gateway inferred for %s: %w", name, err)
	}
	var doc openapi3.T
	if err := json.Unmarshal(b, &doc); err != nil {
		return "", fmt.Errorf("reading what the gateway inferred for %s: %w", name, err)
	}
	var buf bytes.Buffer
	if filepath.Ext(path) == ".json" {
		out, err := json.MarshalIndent(&doc, "", "  ")
		if err != nil {
			return "", err
		}
		buf.Write(append(out, '\n'))
	} else if err := writeYAML(&buf, &doc); err != nil {
		return "", err
	}
	if err := atomicfile.Write(path, buf.Bytes()); err != nil {
		return "", fmt.Errorf("writing %s's fragment: %w", name, err)
	}
	return path, nil
}

// observeInto is the gateway observer that feeds inf.
func observeInto(inf *openapi.Inferrer) func(gateway.Exchange) {
	return func(ex gateway.Exchange) {
		inf.Observe(ex.Exchange)
	}
}

// openAPI answers the gateway's /system/openapi.json: the document of the
// deployed stack's functions and of any other the gateway runs, each from
// its fragment, else from its calls; or, for a name, the fragment
// inferred from its calls.
func (lg *Local) openAPI(ctx context.Context, name string) ([]byte, error) {
	if name != "" {
		doc, ok := lg.inferrer.Document(name)
		if !ok {
			return nil, fmt.Errorf("no call of %s seen yet: call it through this gateway first: %w", name, gateway.ErrNotFound)
		}
		return json.Marshal(doc)
	}
	st := lg.stack.Load()
	var names []string
	if st != nil {
		names = slices.Clone(st.Names)
	}
	for _, s := range lg.Functions() {
		if !slices.Contains(names, s.Name) {
			names = append(names, s.Name)
		}
	}
	fns, err := apiFunctions(ctx, st, names, func(n string) *openapi3.T {
		doc, _ := lg.inferrer.Document(n)
		return doc
	})
	if err != nil {
		return nil, err
	}
	doc, err := openapi.Merge(ctx, apiInfo(st, lg.URL), fns)
	if err != nil {
		return nil, err
	}
	return json.Marshal(doc)
}
