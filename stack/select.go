package stack

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// Select returns the names of the functions that --filter or --regex pick,
// sorted; with neither, every function. As in faas-cli, giving both is an
// error, and so is matching nothing. A picked function whose image is not
// a valid reference is an Error at its line.
func (f *File) Select(filter, regex string) ([]string, error) {
	if filter != "" && regex != "" {
		return nil, errors.New("pass either --filter or --regex, not both")
	}
	var re *regexp.Regexp
	if regex != "" {
		var err error
		if re, err = regexp.Compile(regex); err != nil {
			return nil, fmt.Errorf("--regex %q: %w", regex, err)
		}
	}
	var names []string
	for _, n := range f.Names() {
		switch {
		case re != nil && !re.MatchString(n):
		case filter != "" && !Glob(filter, n):
		default:
			names = append(names, n)
		}
	}
	if len(names) == 0 && (filter != "" || regex != "") {
		flag := fmt.Sprintf("--filter %q", filter)
		if regex != "" {
			flag = fmt.Sprintf("--regex %q", regex)
		}
		return nil, &NoMatchError{Flag: flag, Path: f.Path}
	}
	for _, n := range names {
		if err := f.imageErrs[n]; err != nil {
			return nil, err
		}
	}
	return names, nil
}

// CheckFunctions returns an Error when the file defines no function:
// faas-cli then builds or deploys the one its --image, --name and
// --handler flags describe, which kiln does from a folder instead.
func (f *File) CheckFunctions() error {
	if len(f.Functions) > 0 {
		return nil
	}
	line := max(f.functionsLine, 1)
	return &Error{Path: f.Path, Line: line, Key: "functions", Msg: "no functions defined; to build a folder without a stack file: kiln build DIR --lang LANG --image IMAGE"}
}

// NoMatchError says --filter or --regex picked no function.
type NoMatchError struct {
	Flag, Path string
}

func (e *NoMatchError) Error() string {
	return fmt.Sprintf("no functions matching %s were found in %s", e.Flag, e.Path)
}

// Glob matches faas-cli's --filter: * is the only wildcard, and the whole
// name must match.
func Glob(pattern, s string) bool {
	parts := strings.Split(pattern, "*")
	if len(parts) == 1 {
		return pattern == s
	}
	if !strings.HasPrefix(s, parts[0]) {
		return false
	}
	s = s[len(parts[0]):]
	for _, p := range parts[1 : len(parts)-1] {
		i := strings.Index(s, p)
		if i < 0 {
			return false
		}
		s = s[i+len(p):]
	}
	return strings.HasSuffix(s, parts[len(parts)-1])
}

// HandlerDir returns fn's handler folder as an absolute path, resolved
// against the working directory as faas-cli does, and checks that it is a
// folder.
func (f *File) HandlerDir(fn Function) (string, error) {
	if fn.Handler == "" {
		return "", f.FuncError(fn, "handler", "missing")
	}
	dir, err := filepath.Abs(fn.Handler)
	if err != nil {
		return "", err
	}
	info, err := os.Stat(dir)
	if err != nil {
		return "", f.FuncError(fn, "handler", "folder %s not found", fn.Handler)
	}
	if !info.IsDir() {
		return "", f.FuncError(fn, "handler", "%s is a file; handler names a folder", fn.Handler)
	}
	return dir, nil
}
