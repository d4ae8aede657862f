package node

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kiln-build/kiln/internal/fileutil"
	"github.com/kiln-build/kiln/internal/step"
	"github.com/kiln-build/kiln/languages"
	"github.com/kiln-build/kiln/layers"
)

// codeStep checks the handler folder and writes it to /home/app/function,
// without what the dependency layer holds.
type codeStep struct {
	pack *Pack
	fn   languages.Function
	deps *depsStep
}

func (s *codeStep) Name() string { return "handler code" }

// files lists the handler folder as it goes into the image.
func (s *codeStep) files() ([]layers.File, error) {
	return languages.HandlerFiles(s.fn.Dir, functionDir, func(rel string, d fs.DirEntry) bool {
		switch rel {
		case "node_modules", ".git", "build", "template", "package.json", "npm-shrinkwrap.json", "package-lock.json":
			return true
		}
		return false
	})
}

// testsEnabled says whether npm test runs: when package.json defines a
// test and TEST_ENABLED is not false, as in the templates.
func (s *codeStep) testsEnabled() bool {
	if v, ok := s.fn.BuildArgs["TEST_ENABLED"]; ok && (v == "false" || v == "0") {
		return false
	}
	return s.deps.manifest.hasTest()
}

// The key covers the dependencies too: the checks and the tests run
// against them, though the layer's bytes do not depend on them.
func (s *codeStep) Key(ctx context.Context) (v1.Hash, error) {
	files, err := s.files()
	if err != nil {
		return v1.Hash{}, err
	}
	deps, err := s.deps.key(ctx, s.testsEnabled() && s.deps.manifest.devDeps)
	if err != nil {
		return v1.Hash{}, err
	}
	k := layers.NewKey("node/code/v1").
		String(s.fn.Lang).
		Hash(deps).
		String(fmt.Sprint(s.testsEnabled())).
		String(string(checkJS)).
		String(s.fn.Epoch.UTC().Format(time.RFC3339))
	if err := k.Files(files); err != nil {
		return v1.Hash{}, fmt.Errorf("hashing %s: %w", s.fn.Dir, err)
	}
	return k.Sum(), nil
}

func (s *codeStep) Build(ctx context.Context, w io.Writer) error {
	files, err := s.files()
	if err != nil {
		return err
	}
	tests := s.testsEnabled()
	deps, err := s.deps.install(ctx, tests && s.deps.manifest.devDeps)
	if err != nil {
		return err
	}
	stage, err := s.stage(files, deps)
	if err != nil {
		return err
	}
	if err := s.check(ctx, stage); err != nil {
		return err
	}
	if tests {
		if err := s.test(ctx, stage); err != nil {
			return err
		}
	}
	return layers.WriteTar(w, files, languages.LayerOptions(s.fn.Epoch)...)
}

// stage copies the handler folder beside the installed dependencies, so
// that node and npm test never write into the user's folder.
func (s *codeStep) stage(files []layers.File, deps string) (string, error) {
	stage, err := os.MkdirTemp(s.fn.ScratchDir, "function-")
	if err != nil {
		return "", err
	}
	for _, f := range files {
		rel := strings.TrimPrefix(strings.TrimPrefix(f.Path, functionDir), "/")
		dst := filepath.Join(stage, filepath.FromSlash(rel))
		switch {
		case f.Mode.IsDir():
			err = os.MkdirAll(dst, 0o755)
		case f.Mode&fs.ModeSymlink != 0:
			err = os.Symlink(f.Linkname, dst)
		default:
			err = fileutil.CopyNew(f.Source, dst)
		}
		if err != nil {
			return "", fmt.Errorf("staging %s: %w", rel, err)
		}
	}
	m := s.deps.manifest
	if err := os.WriteFile(filepath.Join(stage, "package.json"), m.packageJSON, 0o644); err != nil {
		return "", err
	}
	if m.lockName != "" {
		if err := os.WriteFile(filepath.Join(stage, m.lockName), m.lock, 0o644); err != nil {
			return "", err
		}
	}
	if _, err := os.Stat(filepath.Join(deps, "node_modules")); err == nil {
		if err := os.Symlink(filepath.Join(deps, "node_modules"), filepath.Join(stage, "node_modules")); err != nil {
			return "", err
		}
	}
	return stage, nil
}

// checkResult is what shim/check.js prints.
type checkResult struct {
	Kind    string `json:"kind"`
	File    string `json:"file"`
	Line    int    `json:"line"`
	Module  string `json:"module"`
	Message string `json:"message"`
	Detail  string `json:"detail"`
}

// check compiles every .js file and loads handler.js with the host's node.
func (s *codeStep) check(ctx context.Context, stage string) error {
	script := filepath.Join(s.fn.ScratchDir, "kiln-check.js")
	if err := os.WriteFile(script, checkJS, 0o644); err != nil {
		return err
	}
	cmd := s.pack.command(ctx, s.pack.opts.node, stage, script, stage)
	out, err := cmd.Output()
	var res checkResult
	if jsonErr := json.Unmarshal(out, &res); jsonErr != nil {
		if err == nil {
			err = jsonErr
		}
		return fmt.Errorf("checking the handler with node: %w", err)
	}
	if res.Kind == "" {
		return nil
	}
	// Report the user's own paths, not the staging copy's.
	file := res.File
	if rel, err := filepath.Rel(stage, file); err == nil && !strings.HasPrefix(rel, "..") {
		file = filepath.Join(s.fn.Dir, rel)
	}
	detail := strings.ReplaceAll(res.Detail, stage+string(filepath.Separator), s.fn.Dir+string(filepath.Separator))
	se := &languages.SourceError{Path: file, Line: res.Line, Detail: detail}
	switch res.Kind {
	case "syntax":
		se.Reason = res.Message
	case "require":
		se.Reason = fmt.Sprintf("requires %q, which is not installed: add it to package.json (npm install %s)", res.Module, res.Module)
		se.Detail = ""
	case "export":
		se.Reason = "module.exports must be a function " + signature(s.fn.Lang) + ", but handler.js " + res.Message
	default:
		se.Reason = "loading handler.js failed: " + res.Message
	}
	return se
}

// test runs npm test, as the template's build does.
func (s *codeStep) test(ctx context.Context, stage string) error {
	cmd := s.pack.command(ctx, s.pack.opts.npm, stage, "test")
	test := step.Start(ctx, "test")
	out, err := cmd.CombinedOutput()
	test.End(err)
	if err != nil {
		return &languages.SourceError{Path: filepath.Join(s.fn.Dir, "package.json"), Reason: "npm test failed (skip with --build-arg TEST_ENABLED=false)", Detail: strings.TrimSpace(string(out))}
	}
	return nil
}
