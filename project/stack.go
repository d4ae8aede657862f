package project

import (
	"context"
	"errors"

	"github.com/kiln-build/kiln/internal/usage"
	"github.com/kiln-build/kiln/stack"
)

// Selection names a stack file and the functions of it a command works on,
// as faas-cli's -f, --filter, --regex, --tag and --envsubst do.
type Selection struct {
	File, Filter, Regex, Tag string
	Envsubst                 bool
}

// Stack is a stack file read once, with the functions selected from it.
type Stack struct {
	*stack.File
	// Names are the selected functions, in the file's order.
	Names []string
	// Tag is how images are tagged (--tag).
	Tag stack.TagFormat
}

// LoadStack reads the stack file sel names, substituting ${VAR} from
// getenv, and selects its functions. A file with no functions is an
// error. The file's warnings are left in st.Warnings; Project.LoadStack
// emits them.
func LoadStack(ctx context.Context, sel Selection, getenv func(string) string) (*Stack, error) {
	st, _, err := loadStack(ctx, sel, getenv)
	return st, err
}

// LoadStack is LoadStack with the project's environment, emitting the
// stack file's warnings as Warning events, even when it then fails.
func (p *Project) LoadStack(ctx context.Context, sel Selection) (*Stack, error) {
	st, warnings, err := loadStack(ctx, sel, p.opts.getenv)
	for _, w := range warnings {
		p.emit(Warning{Path: w.Path, Line: w.Line, Msg: w.Key + ": " + w.Msg})
	}
	return st, err
}

func loadStack(ctx context.Context, sel Selection, getenv func(string) string) (*Stack, []stack.Warning, error) {
	format, err := stack.ParseTagFormat(sel.Tag)
	if err != nil {
		return nil, nil, usage.Wrap(err)
	}
	path, err := stack.Find(sel.File)
	if err != nil {
		return nil, nil, usage.Wrap(err)
	}
	sf, err := stack.Read(ctx, path, stack.WithEnv(getenv), stack.WithEnvsubst(sel.Envsubst))
	if err != nil {
		return nil, nil, err
	}
	if err := sf.CheckFunctions(); err != nil {
		return nil, sf.Warnings, err
	}
	names, err := sf.Select(sel.Filter, sel.Regex)
	var nm *stack.NoMatchError
	if err != nil && !errors.As(err, &nm) {
		err = usage.Wrap(err)
	}
	if err != nil {
		return nil, sf.Warnings, err
	}
	return &Stack{File: sf, Names: names, Tag: format}, sf.Warnings, nil
}

// Image returns the image name of the stack's function n under its tag
// format.
func (s *Stack) Image(ctx context.Context, n string) (string, error) {
	return s.FunctionImage(ctx, n, s.Tag)
}
