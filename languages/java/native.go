package java

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kiln-build/kiln/internal/contract"
	"github.com/kiln-build/kiln/internal/lazy"
	"github.com/kiln-build/kiln/languages"
	"github.com/kiln-build/kiln/layers"
)

// The values of the JAVA_RUNTIME build argument.
const (
	// runtimeJlink, the default: a runtime linked with jlink from the
	// modules the function uses.
	runtimeJlink = "jlink"
	// runtimeJRE: Debian's whole headless JRE package on the java base.
	runtimeJRE = "jre"
	// runtimeNative labels images compiled by native-image (NATIVE=true).
	runtimeNative = "native"
)

// nativeBinary is where a native-image build puts the function.
const nativeBinary = contract.AppDir + "/handler"

// buildArgs are the build arguments the pack reads beyond the class path's.
type buildArgs struct {
	// native: NATIVE=true, compile with GraalVM's native-image.
	native bool
	// cds: JAVA_CDS=true, add a class data sharing archive to the jlinked
	// runtime (faster start, about 13 MB more).
	cds bool
	// runtime is JAVA_RUNTIME: runtimeJlink or runtimeJRE.
	runtime string
}

// readBuildArgs reads NATIVE, JAVA_CDS and JAVA_RUNTIME and rejects
// combinations that mean nothing.
func readBuildArgs(fn languages.Function) (buildArgs, error) {
	var a buildArgs
	var err error
	if a.native, err = boolArg(fn, "NATIVE"); err != nil {
		return a, err
	}
	if a.cds, err = boolArg(fn, "JAVA_CDS"); err != nil {
		return a, err
	}
	switch v := fn.BuildArgs["JAVA_RUNTIME"]; v {
	case "", runtimeJlink:
		a.runtime = runtimeJlink
	case runtimeJRE:
		a.runtime = runtimeJRE
	default:
		return a, fmt.Errorf("build arg JAVA_RUNTIME=%s: want %s (the default) or %s", v, runtimeJlink, runtimeJRE)
	}
	switch {
	case a.native && fn.BuildArgs["JAVA_RUNTIME"] != "":
		return a, fmt.Errorf("build args NATIVE=true and JAVA_RUNTIME=%s: a native image has no Java runtime", a.runtime)
	case a.native && a.cds:
		return a, fmt.Errorf("build args NATIVE=true and JAVA_CDS=true: a native image has no Java runtime to archive classes for")
	case a.cds && a.runtime == runtimeJRE:
		return a, fmt.Errorf("build args JAVA_CDS=true and JAVA_RUNTIME=jre: Debian's JRE comes with its own archive")
	}
	if a.native {
		a.runtime = runtimeNative
	}
	return a, nil
}

// boolArg reads a true/false build argument; unset is false.
func boolArg(fn languages.Function, name string) (bool, error) {
	switch v := strings.ToLower(fn.BuildArgs[name]); v {
	case "", "false", "0", "no":
		return false, nil
	case "true", "1", "yes":
		return true, nil
	default:
		return false, fmt.Errorf("build arg %s=%s: want true or false", name, fn.BuildArgs[name])
	}
}

// findNativeImage finds GraalVM's native-image in GRAALVM_HOME/bin, else
// on PATH.
func findNativeImage(getenv func(string) string) (string, error) {
	if home := getenv("GRAALVM_HOME"); home != "" {
		p := filepath.Join(home, "bin", "native-image")
		if isFile(p) {
			return p, nil
		}
		return "", fmt.Errorf("NATIVE=true needs GraalVM's native-image, and GRAALVM_HOME=%s has no bin/native-image", home)
	}
	if p, err := lookPath("native-image", getenv("PATH")); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("NATIVE=true needs GraalVM's native-image: install GraalVM and set GRAALVM_HOME, or put native-image on PATH")
}

// nativeImageArgs forms the native-image command that compiles the handler,
// the entrypoint and the dependencies into one binary. reflectConfig, when
// not "", is a reflection configuration file: the entrypoint loads the
// handler by name, which native-image's analysis cannot see.
func nativeImageArgs(nativeImage, mainClass, out, reflectConfig string, classpath []string) []string {
	args := []string{nativeImage, "--no-fallback"}
	if reflectConfig != "" {
		args = append(args, "-H:ReflectionConfigurationFiles="+reflectConfig)
	}
	return append(args, "-cp", strings.Join(classpath, ":"), "-o", out, mainClass)
}

// reflectionConfig is native-image's reflection configuration for the
// handler class, which the entrypoint loads by name.
func reflectionConfig(class string) string {
	return fmt.Sprintf(`[{"name":%q,"allDeclaredConstructors":true,"allPublicMethods":true}]`+"\n", class)
}

// nativePlan plans a function compiled by native-image: one layer with
// the binary, on the java base (glibc, zlib, certificates), started by the
// watchdog like any other function.
func (b *build) nativePlan(nativeImage, resources string) *languages.Plan {
	step := &nativeStep{b: b, nativeImage: nativeImage, resources: resources}
	step.version = lazy.New(func(ctx context.Context) (string, error) {
		version, err := b.run(ctx, b.fn.ScratchDir, nativeImage, "--version")
		if err != nil {
			return "", fmt.Errorf("running %s --version: %w\n%s", nativeImage, err, version)
		}
		return strings.TrimSpace(string(version)), nil
	})
	return &languages.Plan{
		Base:   baseName,
		Steps:  []layers.Step{step},
		Env:    slices.Concat([]string{contract.FProcess("/" + nativeBinary)}, contract.HTTPMode(contract.UpstreamPort), []string{contract.RawLogs}),
		Labels: map[string]string{"dev.kiln.lang": b.fn.Lang, "dev.kiln.java.runtime": runtimeNative},
	}
}

// nativeStep compiles the function with native-image into one binary.
type nativeStep struct {
	b           *build
	nativeImage string
	// version is native-image --version: the compiler is an input.
	version *lazy.Value[string]
	// resources is the host's resources folder, "" when there is none.
	resources string
}

func (s *nativeStep) Name() string { return "native image" }

// classpath lists host directories and jars, in class path order: the
// classes, the resources, the dependencies, kiln's jars.
func (s *nativeStep) classpath(ctx context.Context) ([]string, error) {
	kilnJars, d, err := s.b.classpath(ctx)
	if err != nil {
		return nil, err
	}
	classes, err := s.b.classes.Get(ctx)
	if err != nil {
		return nil, err
	}
	classpath := []string{classes}
	if s.resources != "" {
		classpath = append(classpath, s.resources)
	}
	return append(append(classpath, d.all()...), kilnJars...), nil
}

func (s *nativeStep) Key(ctx context.Context) (v1.Hash, error) {
	version, err := s.version.Get(ctx)
	if err != nil {
		return v1.Hash{}, err
	}
	classpath, err := s.classpath(ctx)
	if err != nil {
		return v1.Hash{}, err
	}
	k := layers.NewKey("java/native-image/v1").
		String(version).
		String(s.b.mainClass).
		String(s.b.fn.Platform.String()).
		String(s.b.fn.Epoch.UTC().String())
	for _, p := range classpath {
		k.String(filepath.Base(p))
		if isDir(p) {
			files, err := layers.FromDir(p, "")
			if err != nil {
				return v1.Hash{}, err
			}
			if err := k.Files(files); err != nil {
				return v1.Hash{}, err
			}
		} else if err := k.File(p); err != nil {
			return v1.Hash{}, err
		}
	}
	return k.Sum(), nil
}

func (s *nativeStep) Build(ctx context.Context, w io.Writer) error {
	dir := filepath.Join(s.b.fn.ScratchDir, "native")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	reflect := ""
	if s.b.mainClass == entrypoint {
		reflect = filepath.Join(dir, "reflect-config.json")
		if err := os.WriteFile(reflect, []byte(reflectionConfig(handlerClass)), 0o644); err != nil {
			return err
		}
	}
	classpath, err := s.classpath(ctx)
	if err != nil {
		return err
	}
	out := filepath.Join(dir, "handler")
	args := nativeImageArgs(s.nativeImage, s.b.mainClass, out, reflect, classpath)
	if msg, err := s.b.run(ctx, dir, args[0], args[1:]...); err != nil {
		return fmt.Errorf("compiling with native-image: %w\n%s", err, msg)
	}
	if !isFile(out) {
		return fmt.Errorf("compiling with native-image: %s wrote no %s", s.nativeImage, out)
	}
	return layers.WriteTar(w, []layers.File{layers.HostFile(nativeBinary, 0o755, out)}, languages.LayerOptions(s.b.fn.Epoch)...)
}
