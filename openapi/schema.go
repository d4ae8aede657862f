package openapi

import (
	"math"
	"regexp"
	"slices"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
)

// The bounds of a shape: deeper values are taken as any value of their
// kind, and an object's properties beyond maxProperties are left out (an
// object schema without additionalProperties: false accepts them).
const (
	maxDepth      = 24
	maxProperties = 200
)

// shape accumulates the JSON values seen at one place of a body, for the
// schema that accepts them all.
type shape struct {
	null, boolean, integer, number, str, object, array bool
	// formats are the string formats every string seen so far has;
	// formatsSeen says whether a string was seen yet.
	formats    []string
	formatSeen bool
	// objects counts the objects seen, seen counts each key over them;
	// keys keeps the first-seen order.
	objects    int
	keys       []string
	props      map[string]*shape
	seen       map[string]int
	deepObject bool
	items      *shape
	deepArray  bool
}

var uuidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// stringFormats returns the formats of s that kin-openapi checks alike.
func stringFormats(s string) []string {
	var out []string
	if _, err := time.Parse(time.RFC3339Nano, s); err == nil && len(s) >= 20 {
		out = append(out, "date-time")
	}
	if uuidRE.MatchString(s) {
		out = append(out, "uuid")
	}
	return out
}

// add records v, a value of encoding/json's any (numbers as json.Number
// or float64), met at depth.
func (s *shape) add(v any, depth int) {
	switch v := v.(type) {
	case nil:
		s.null = true
	case bool:
		s.boolean = true
	case float64:
		if v == math.Trunc(v) {
			s.integer = true
		} else {
			s.number = true
		}
	case string:
		f := stringFormats(v)
		if !s.formatSeen {
			s.formats, s.formatSeen = f, true
		} else {
			s.formats = slices.DeleteFunc(s.formats, func(x string) bool { return !slices.Contains(f, x) })
		}
		s.str = true
	case map[string]any:
		s.object = true
		s.objects++
		if depth >= maxDepth {
			s.deepObject = true
			return
		}
		if s.props == nil {
			s.props, s.seen = map[string]*shape{}, map[string]int{}
		}
		for _, k := range sortedKeys(v) {
			p := s.props[k]
			if p == nil {
				if len(s.props) >= maxProperties {
					continue
				}
				p = &shape{}
				s.props[k] = p
				s.keys = append(s.keys, k)
			}
			s.seen[k]++
			p.add(v[k], depth+1)
		}
	case []any:
		s.array = true
		if depth >= maxDepth {
			s.deepArray = true
			return
		}
		for _, x := range v {
			if s.items == nil {
				s.items = &shape{}
			}
			s.items.add(x, depth+1)
		}
	}
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// schema returns the schema that accepts every value added: one type, or
// anyOf the types seen; nullable when null was seen.
func (s *shape) schema() *openapi3.Schema {
	var alts []*openapi3.Schema
	if s.boolean {
		alts = append(alts, &openapi3.Schema{Type: &openapi3.Types{openapi3.TypeBoolean}})
	}
	switch {
	case s.number:
		alts = append(alts, &openapi3.Schema{Type: &openapi3.Types{openapi3.TypeNumber}})
	case s.integer:
		alts = append(alts, &openapi3.Schema{Type: &openapi3.Types{openapi3.TypeInteger}})
	}
	if s.str {
		sc := &openapi3.Schema{Type: &openapi3.Types{openapi3.TypeString}}
		if len(s.formats) > 0 {
			sc.Format = s.formats[0]
		}
		alts = append(alts, sc)
	}
	if s.object {
		alts = append(alts, s.objectSchema())
	}
	if s.array {
		items := &openapi3.Schema{}
		switch {
		case s.deepArray || s.items == nil:
			// Items never seen, or not looked at: any value, null too.
			items.Nullable = true
		default:
			items = s.items.schema()
		}
		alts = append(alts, &openapi3.Schema{Type: &openapi3.Types{openapi3.TypeArray}, Items: openapi3.NewSchemaRef("", items)})
	}
	var out *openapi3.Schema
	switch len(alts) {
	case 0:
		out = &openapi3.Schema{}
	case 1:
		out = alts[0]
	default:
		out = &openapi3.Schema{}
		for _, a := range alts {
			out.AnyOf = append(out.AnyOf, openapi3.NewSchemaRef("", a))
		}
	}
	out.Nullable = s.null
	return out
}

func (s *shape) objectSchema() *openapi3.Schema {
	sc := &openapi3.Schema{Type: &openapi3.Types{openapi3.TypeObject}}
	if s.deepObject {
		return sc
	}
	for _, k := range s.keys {
		if sc.Properties == nil {
			sc.Properties = openapi3.Schemas{}
		}
		sc.Properties[k] = openapi3.NewSchemaRef("", s.props[k].schema())
		if s.seen[k] == s.objects {
			sc.Required = append(sc.Required, k)
		}
	}
	slices.Sort(sc.Required)
	return sc
}
