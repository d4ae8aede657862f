package stack

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse feeds the parser the testdata stack files and mutations of
// them: it must never panic, fail only with an Error or one of the limits,
// and return functions that are whole.
func FuzzParse(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "*", "stack.yml"))
	if err != nil {
		f.Fatal(err)
	}
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, true)
		f.Add(b, false)
	}
	f.Fuzz(func(t *testing.T, data []byte, subst bool) {
		env := func(k string) string {
			if k == "SET" {
				return "value"
			}
			return ""
		}
		sf, err := Parse("stack.yml", data, WithEnv(env), WithEnvsubst(subst))
		if err != nil {
			var se *Error
			if !errors.As(err, &se) && !errors.Is(err, ErrTooLarge) && !errors.Is(err, ErrTooComplex) {
				t.Fatalf("Parse() = %v (%T), want an Error, ErrTooLarge or ErrTooComplex", err, err)
			}
			if se != nil && se.Line < 1 {
				t.Fatalf("Parse() = %v, want a line of 1 or more", err)
			}
			return
		}
		for name, fn := range sf.Functions {
			if fn.Name != name || fn.Image == "" || fn.Line < 1 {
				t.Fatalf("Parse() function %q = %+v, want its name, an image and a line", name, fn)
			}
		}
		for _, w := range sf.Warnings {
			if w.Line < 1 || w.Msg == "" {
				t.Fatalf("Parse() warning %+v, want a line and a message", w)
			}
		}
		names, err := sf.Select("", "")
		if err != nil {
			var se *Error
			if !errors.As(err, &se) {
				t.Fatalf("Select() = %v, want an Error", err)
			}
			return
		}
		for _, n := range names {
			if err := CheckImage(sf.Functions[n].Image); err != nil {
				t.Fatalf("Select() picked %q, whose image is invalid: %v", n, err)
			}
		}
	})
}
