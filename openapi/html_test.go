package openapi

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"

	"golang.org/x/net/html"
)

func TestHTML(t *testing.T) {
	inf := NewInferrer()
	for _, s := range readSamples(t) {
		inf.Observe(s.exchange("shop"))
	}
	inferred, _ := inf.Document("shop")
	doc, err := Merge(context.Background(), Info{Title: "My <stack>", Server: "http://127.0.0.1:8080"}, []Function{
		{Name: "orders", Doc: loadFragment(t, "orders")}, {Name: "users", Doc: loadFragment(t, "users")}, {Name: "shop", Doc: inferred}, {Name: "bare"},
	})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := HTML(&buf, doc); err != nil {
		t.Fatalf("HTML() = %v", err)
	}
	root, err := html.Parse(&buf)
	if err != nil {
		t.Fatal(err)
	}
	var shown, forms, outside []string
	var title string
	for n := range root.Descendants() {
		if n.Type != html.ElementNode {
			continue
		}
		switch {
		case n.Data == "title":
			title = n.FirstChild.Data
		case n.Data == "span" && attr(n, "class") == "path":
			shown = append(shown, n.FirstChild.Data)
		case n.Data == "form" && attr(n, "class") == "try":
			forms = append(forms, attr(n, "data-method")+" "+attr(n, "data-path"))
		}
		for _, a := range []string{"src", "href"} {
			if v := attr(n, a); v != "" && !strings.HasPrefix(v, "#") {
				outside = append(outside, v)
			}
		}
	}
	if title != "My <stack>" {
		t.Errorf("title = %q", title)
	}
	for _, p := range doc.Paths.Keys() {
		if !slices.Contains(shown, p) {
			t.Errorf("HTML() shows paths %v, want %s among them", shown, p)
		}
		for _, method := range methods {
			if doc.Paths.Value(p).GetOperation(method) != nil && !slices.Contains(forms, method+" "+p) {
				t.Errorf("HTML() has try-it forms %v, want %s %s", forms, method, p)
			}
		}
	}
	if len(outside) > 0 {
		t.Errorf("HTML() loads %v, want a self-contained page", outside)
	}
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}
