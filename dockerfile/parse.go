package dockerfile

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
)

// dockerfile is a parsed Dockerfile.
type dockerfile struct {
	// name is how errors name the file.
	name     string
	stages   []instructions.Stage
	metaArgs []instructions.ArgCommand
	// escape is the escape character (the escape directive).
	escape rune
	// ignore is the context's .dockerignore, nil when there is none.
	ignore *patternmatcher.PatternMatcher
}

// parse reads and parses the Dockerfile opts names, and the ignore file
// that goes with it. The parser's warnings go to the context's logger.
func parse(ctx context.Context, opts Options) (*dockerfile, error) {
	name := opts.Dockerfile
	if rel, err := filepath.Rel(opts.Context, name); err == nil && !strings.HasPrefix(rel, "..") {
		name = rel
	}
	b, err := os.ReadFile(opts.Dockerfile)
	if err != nil {
		return nil, fmt.Errorf("reading the Dockerfile: %w", err)
	}
	df := &dockerfile{name: name}
	if len(bytes.TrimSpace(b)) == 0 {
		return nil, df.errorf(0, "the Dockerfile is empty")
	}
	res, err := parser.Parse(bytes.NewReader(b))
	if err != nil {
		return nil, df.wrap(0, err)
	}
	df.escape = res.EscapeToken
	for _, w := range res.Warnings {
		at := 0
		if w.Location != nil {
			at = w.Location.Start.Line
		}
		slog.WarnContext(ctx, w.Short, "file", df.name, "line", at)
	}
	for _, node := range res.AST.Children {
		cmd, err := instructions.ParseInstruction(node)
		if err != nil {
			return nil, df.wrap(node.StartLine, err)
		}
		switch c := cmd.(type) {
		case *instructions.Stage:
			df.stages = append(df.stages, *c)
		case *instructions.ArgCommand:
			if len(df.stages) == 0 {
				df.metaArgs = append(df.metaArgs, *c)
				continue
			}
			df.stages[len(df.stages)-1].AddCommand(c)
		case instructions.Command:
			if len(df.stages) == 0 {
				return nil, df.errorf(node.StartLine, "%s before the first FROM", strings.ToUpper(c.Name()))
			}
			df.stages[len(df.stages)-1].AddCommand(c)
		default:
			return nil, df.errorf(node.StartLine, "%s is not an instruction kiln knows", node.Value)
		}
	}
	if len(df.stages) == 0 {
		return nil, df.errorf(0, "the Dockerfile has no FROM")
	}
	df.ignore, err = readIgnore(opts)
	if err != nil {
		return nil, err
	}
	return df, nil
}

// readIgnore reads <Dockerfile>.dockerignore beside the Dockerfile, or else
// the context's .dockerignore, as BuildKit does.
func readIgnore(opts Options) (*patternmatcher.PatternMatcher, error) {
	for _, p := range []string{opts.Dockerfile + ".dockerignore", filepath.Join(opts.Context, ".dockerignore")} {
		f, err := os.Open(p)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", p, err)
		}
		patterns, err := ignorefile.ReadAll(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", p, err)
		}
		if len(patterns) == 0 {
			return nil, nil
		}
		pm, err := patternmatcher.New(patterns)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		return pm, nil
	}
	return nil, nil
}

// lex returns a shell lexer for ARG and ENV expansion; a lexer is not safe
// for concurrent use, and stages build concurrently.
func (df *dockerfile) lex() *shell.Lex { return shell.NewLex(df.escape) }

// target returns the index of the stage called name, or of the last stage.
func (df *dockerfile) target(name string) (int, error) {
	if name == "" {
		return len(df.stages) - 1, nil
	}
	if i, ok := df.stageIndex(name); ok {
		return i, nil
	}
	return 0, df.errorf(0, "target stage %q is not in the Dockerfile", name)
}

// stageIndex finds a stage by name or by number, as COPY --from names it.
func (df *dockerfile) stageIndex(name string) (int, bool) {
	for i, st := range df.stages {
		if st.Name != "" && strings.EqualFold(st.Name, name) {
			return i, true
		}
	}
	if n, err := strconv.Atoi(name); err == nil && n >= 0 && n < len(df.stages) {
		return n, true
	}
	return 0, false
}

// errorf returns an error at line (0: the whole file).
func (df *dockerfile) errorf(line int, format string, args ...any) error {
	return &Error{File: df.name, Line: line, Err: fmt.Errorf(format, args...)}
}

// wrap places err at the line it carries, or else at line.
func (df *dockerfile) wrap(line int, err error) error {
	var le *parser.LocationError
	if errors.As(err, &le) && len(le.Locations) > 0 && len(le.Locations[0]) > 0 {
		line = le.Locations[0][0].Start.Line
		err = le.Unwrap()
	}
	// An error in another stage keeps its own line.
	var de *Error
	if errors.As(err, &de) {
		return de
	}
	return &Error{File: df.name, Line: line, Err: firstLineError{err}}
}

// firstLineError reads as the first line of err, for a one-line message,
// and keeps err for errors.Is and errors.As: a caller tells a step's
// sandbox refused (run.SandboxDeniedError) from its command failing.
type firstLineError struct{ err error }

func (e firstLineError) Error() string { return firstLine(e.err.Error()) }

func (e firstLineError) Unwrap() error { return e.err }

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}

// line is where an instruction starts.
func line(c instructions.Command) int {
	if loc := c.Location(); len(loc) > 0 {
		return loc[0].Start.Line
	}
	return 0
}
