package languages

import (
	"context"
	"fmt"
	"os"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/internal/contract"
	"github.com/kiln-build/kiln/layers"
)

// LayerOptions are the options of a layer under contract.AppDir, where
// every pack puts the function: entries stamped with epoch, and the
// folder and all below it owned by the function's user, as the OpenFaaS
// templates chown /home/app, so a function may write in its working
// directory.
func LayerOptions(epoch time.Time) []layers.Option {
	return []layers.Option{layers.WithEpoch(epoch), layers.WithTreeOwner(contract.AppDir, contract.UID, contract.GID)}
}

// Function is one function to build.
type Function struct {
	// Name is the function's name (the stack file's key).
	Name string
	// Dir is the absolute path of the handler folder.
	Dir string
	// Origin is the user's handler folder when Dir is a staged copy of it
	// (configuration.copy), "" otherwise: the paths its manifests name
	// outside the folder (Name) are relative to the user's.
	Origin string
	// Lang is the stack file's lang value.
	Lang string
	// Platform is the platform the image runs on.
	Platform v1.Platform
	// BuildArgs are the stack file's build_args and --build-arg flags.
	BuildArgs map[string]string
	// Packages are Debian packages to add to the runtime base: faas-cli's
	// build_options and ADDITIONAL_PACKAGE.
	Packages []string
	// Epoch is the timestamp every layer entry carries.
	Epoch time.Time
	// ScratchDir is a directory the pack may use during this build; the
	// builder removes it afterwards.
	ScratchDir string
	// SecretsDir holds the stack's build_secrets, one file per id, for the
	// build to read; empty when there are none. Nothing from it may reach a
	// layer, the config or a cache key.
	SecretsDir string
	// NoCache (--no-cache) asks the pack to redo what it keeps between
	// builds, such as installed dependencies, rather than reuse it.
	NoCache bool
	// Trees, when set by the builder, is where the pack keeps what it
	// makes between builds (installed dependencies, compiled classes):
	// a cache repository in front of kiln's cache, which a fresh machine
	// reads instead of running the tools again. Nil: the pack's own
	// cache directory.
	Trees Trees
}

// Trees keeps the directories packs make, by kind and key, as
// cache.Store.Tree does; *cache.Store is one, a cacherepo.Cache another.
type Trees interface {
	Tree(ctx context.Context, k cache.Kind, key string, fill func(dir string) error, opts ...cache.TreeOption) (*cache.Lease, error)
}

var _ Trees = (*cache.Store)(nil)

// Plan says how to build a function's image on top of a runtime base.
type Plan struct {
	// Base names the runtime base, e.g. "static".
	Base string
	// Steps are the layers above the base and the watchdog, bottom first.
	// Each step's key covers everything its bytes depend on, the epoch
	// included.
	Steps []layers.Step
	// Env is added to the base's environment: the watchdog's settings
	// (fprocess, mode, upstream_url, ...) and the runtime's own.
	Env []string
	// Labels are added to the image config.
	Labels map[string]string
	// Packages are Debian packages the pack adds to the runtime base,
	// beside the function's own.
	Packages []string
	// Named are the files and folders the function's manifests name
	// (Name), which the steps read and their keys cover: `kiln dev`
	// watches those outside the handler folder. Default none.
	Named []Named
	// Finish, when set, completes Env and Labels with what only the
	// steps' work tells, such as the version of the compiler that ran, so
	// that Plan itself starts no tool. The builder calls it once every
	// step's key is known and its layer built or found. Default nil.
	Finish func(ctx context.Context, p *Plan) error
}

// Pack builds functions of one family of languages.
type Pack interface {
	// Langs lists the lang values the pack builds.
	Langs() []string
	// Plan checks the function's source and plans its layers. It reads
	// files but starts no process: compilers, package managers and the
	// tools' version queries run in the steps, whose time the builder
	// reports. Errors about the user's source are of type *SourceError.
	Plan(ctx context.Context, fn Function) (*Plan, error)
}

// CheckHandlerDir returns a *SourceError unless dir is a folder.
func CheckHandlerDir(dir string) error {
	info, err := os.Stat(dir)
	if err != nil {
		return &SourceError{Path: dir, Reason: "handler folder not found"}
	}
	if !info.IsDir() {
		return &SourceError{Path: dir, Reason: "handler must be a folder, not a file"}
	}
	return nil
}

// SourceError is a mistake in a function's source: it names the file and,
// where known, the line.
type SourceError struct {
	Path   string
	Line   int
	Reason string
	// Detail holds tool output (compiler errors) shown under the one-line
	// cause.
	Detail string
}

func (e *SourceError) Error() string {
	loc := e.Path
	if e.Line > 0 {
		loc = fmt.Sprintf("%s:%d", e.Path, e.Line)
	}
	if e.Detail != "" {
		return fmt.Sprintf("%s: %s\n%s", loc, e.Reason, e.Detail)
	}
	return fmt.Sprintf("%s: %s", loc, e.Reason)
}
