package java

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"

	"github.com/kiln-build/kiln/internal/contract"
	"github.com/kiln-build/kiln/internal/envlist"
	"github.com/kiln-build/kiln/internal/lazy"
	"github.com/kiln-build/kiln/languages"
	"github.com/kiln-build/kiln/layers"
)

// The lang values this pack builds.
const (
	LangJava11 = "java11"
	LangJava17 = "java17"
	LangJava   = "java"
)

// Where things go in the image.
const (
	// baseName is the runtime base every Java function runs on.
	baseName     = "java"
	javaHome     = "opt/java"
	classesDir   = contract.AppDir + "/classes"
	resourcesDir = contract.AppDir + "/resources"
	libDir       = contract.AppDir + "/lib"
	snapshotDir  = contract.AppDir + "/lib-snapshot"
	modelJarPath = contract.AppDir + "/kiln/openfaas.jar"
	entrypoint   = "com.openfaas.entrypoint.App"
	handlerClass = "com.openfaas.function.Handler"
	handlerFile  = "src/main/java/com/openfaas/function/Handler.java"
	// jvmFlags start every function's JVM; UseContainerSupport is the
	// template's, SerialGC suits a function's one or two cores and small heap.
	jvmFlags = "-XX:+UseContainerSupport -XX:+UseSerialGC"
)

// Option configures the pack.
type Option func(*options) error

type options struct {
	env      []string
	cacheDir string
	debian   languages.Debian
	gradle   string
}

// WithEnv sets the environment the JDK tools and Maven run in (JAVA_HOME,
// PATH, MAVEN_OPTS, ...). The default is empty, so the CLI passes
// os.Environ().
func WithEnv(env []string) Option { return func(o *options) error { o.env = env; return nil } }

// WithCacheDir sets kiln's cache directory, where resolved dependencies,
// the compiled model jar, compiled classes and module lists are kept
// between builds, as entries of kind cache.JavaOutputs. The default is
// none: every build starts from nothing.
func WithCacheDir(dir string) Option { return func(o *options) error { o.cacheDir = dir; return nil } }

// Pack builds Java functions.
type Pack struct {
	opts options
}

var _ languages.Pack = (*Pack)(nil)

// New returns the Java pack.
func New(opts ...Option) (*Pack, error) {
	var o options
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, fmt.Errorf("configuring the Java pack: %w", err)
		}
	}
	return &Pack{opts: o}, nil
}

// Langs implements languages.Pack.
func (p *Pack) Langs() []string { return languages.Built(Langs()) }

// build is one function's build in progress. Its stages (kiln's model
// jar, the dependencies' resolution, javac, jdeps) run when a step first
// needs them, once per build, each kept in the pack's cache by its
// inputs; the steps that share a stage wait for it, and report its time.
type build struct {
	pack      *Pack
	fn        languages.Function
	jdk       *jdk
	cache     string
	mainClass string

	// kilnJars are kiln's own on the class path: the model and
	// entrypoint, for handlers only.
	kilnJars *lazy.Value[[]string]
	deps     *lazy.Value[*deps]
	// classes is the tree javac compiled.
	classes *lazy.Value[string]
	// linked are the JDK modules a jlinked runtime holds.
	linked *lazy.Value[[]string]
}

func newBuild(p *Pack, fn languages.Function, j *jdk, cache, mainClass string) *build {
	b := &build{pack: p, fn: fn, jdk: j, cache: cache, mainClass: mainClass}
	b.kilnJars = lazy.New(func(ctx context.Context) ([]string, error) {
		if mainClass != entrypoint {
			return nil, nil
		}
		jar, err := b.modelJar(ctx)
		if err != nil {
			return nil, err
		}
		return []string{jar}, nil
	})
	b.deps = lazy.New(b.dependencies)
	b.classes = lazy.New(func(ctx context.Context) (string, error) {
		kilnJars, d, err := b.classpath(ctx)
		if err != nil {
			return "", err
		}
		return b.compile(ctx, kilnJars, d)
	})
	b.linked = lazy.New(func(ctx context.Context) ([]string, error) {
		kilnJars, d, err := b.classpath(ctx)
		if err != nil {
			return nil, err
		}
		classes, err := b.classes.Get(ctx)
		if err != nil {
			return nil, err
		}
		return b.modules(ctx, mainClass, classes, kilnJars, d)
	})
	return b
}

// classpath returns the jars the function's classes compile and run
// against: kiln's, then the dependencies.
func (b *build) classpath(ctx context.Context) ([]string, *deps, error) {
	kilnJars, err := b.kilnJars.Get(ctx)
	if err != nil {
		return nil, nil, err
	}
	d, err := b.deps.Get(ctx)
	if err != nil {
		return nil, nil, err
	}
	return kilnJars, d, nil
}

// Plan implements languages.Pack. It starts no tool: Maven or Gradle,
// javac, jdeps and jlink run in the steps, whose keys cover their inputs,
// and Finish completes the class path and the labels from their results.
func (p *Pack) Plan(ctx context.Context, fn languages.Function) (*languages.Plan, error) {
	if fn.Lang != LangJava11 && fn.Lang != LangJava17 && fn.Lang != LangJava {
		return nil, fmt.Errorf("java pack cannot build lang %q", fn.Lang)
	}
	if err := languages.CheckHandlerDir(fn.Dir); err != nil {
		return nil, err
	}
	mainClass, err := findMain(fn)
	if err != nil {
		return nil, err
	}
	// The build files and Maven's settings.xml are read where they are,
	// and only while they stay in the folder.
	for _, name := range append([]string{"pom.xml", "settings.xml"}, gradleFiles...) {
		var se *languages.SourceError
		if _, err := languages.ManifestPath(fn.Dir, name); errors.As(err, &se) {
			return nil, se
		}
	}
	args, err := readBuildArgs(fn)
	if err != nil {
		return nil, err
	}
	cross := fn.Platform.Architecture != "" && fn.Platform.Architecture != runtime.GOARCH
	var nativeImage string
	switch {
	case args.native && cross:
		return nil, fmt.Errorf("NATIVE=true builds for this machine's platform only: native-image does not compile for %s", fn.Platform.String())
	case args.native:
		if nativeImage, err = findNativeImage(p.getenv); err != nil {
			return nil, err
		}
	case args.cds && cross:
		return nil, fmt.Errorf("JAVA_CDS=true builds for this machine's platform only: the archive is made by running the runtime, which cannot run here for %s", fn.Platform.String())
	}
	j, err := findJDK(ctx, p.getenv)
	if err != nil {
		return nil, err
	}
	cacheDir := p.opts.cacheDir
	if cacheDir == "" {
		cacheDir = filepath.Join(fn.ScratchDir, "java-cache")
	}
	b := newBuild(p, fn, j, cacheDir, mainClass)
	resourcesHost := filepath.Join(fn.Dir, "src", "main", "resources")
	if !isDir(resourcesHost) {
		resourcesHost = ""
	}
	if args.native {
		return b.nativePlan(nativeImage, resourcesHost), nil
	}
	arch := fn.Platform.Architecture
	if arch == "" {
		arch = runtime.GOARCH
	}

	plan := &languages.Plan{
		Base:   baseName,
		Labels: map[string]string{"dev.kiln.lang": fn.Lang, "dev.kiln.java.runtime": args.runtime},
	}
	home := "/" + javaHome
	var rt *runtimeStep
	switch args.runtime {
	case runtimeJRE:
		// Debian's whole JRE, as its package installs it, for comparisons
		// and for code that loads modules jdeps cannot see.
		major, _ := jdkRelease(j.version)
		plan.Packages = []string{"openjdk-" + major + "-jre-headless"}
		home = "/usr/lib/jvm/java-" + major + "-openjdk-" + arch
	default:
		rt = &runtimeStep{b: b, arch: arch, trustStore: contract.JavaTrustStore, cds: args.cds}
		if cross {
			rt.cross = lazy.New(func(ctx context.Context) (*targetJDK, error) {
				return b.crossJDK(ctx, fn.Platform.String(), arch)
			})
		}
		plan.Steps = []layers.Step{rt}
	}
	opts := languages.LayerOptions(fn.Epoch)
	// Layers go from what changes least to what changes on every edit.
	for _, set := range []struct {
		name, dir string
		jars      func(*deps) []string
	}{
		{"dependencies", libDir, func(d *deps) []string { return d.release }},
		{"snapshot dependencies", snapshotDir, func(d *deps) []string { return d.snapshot }},
	} {
		plan.Steps = append(plan.Steps, layers.LazyFilesStep(set.name, func(ctx context.Context) ([]layers.File, error) {
			d, err := b.deps.Get(ctx)
			if err != nil {
				return nil, err
			}
			var files []layers.File
			for _, jar := range set.jars(d) {
				files = append(files, layers.HostFile(set.dir+"/"+filepath.Base(jar), 0o644, jar))
			}
			return files, nil
		}, opts...))
	}
	if mainClass == entrypoint {
		plan.Steps = append(plan.Steps, layers.LazyFilesStep("openfaas model and entrypoint", func(ctx context.Context) ([]layers.File, error) {
			jars, err := b.kilnJars.Get(ctx)
			if err != nil {
				return nil, err
			}
			return []layers.File{layers.HostFile(modelJarPath, 0o644, jars[0])}, nil
		}, opts...))
	}
	if resourcesHost != "" {
		files, err := layers.FromDir(resourcesHost, resourcesDir)
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", resourcesHost, err)
		}
		plan.Steps = append(plan.Steps, layers.FilesStep("resources", files, opts...))
	}
	plan.Steps = append(plan.Steps, layers.LazyFilesStep("classes", func(ctx context.Context) ([]layers.File, error) {
		classes, err := b.classes.Get(ctx)
		if err != nil {
			return nil, err
		}
		files, err := layers.FromDir(classes, classesDir)
		if err != nil {
			return nil, fmt.Errorf("reading compiled classes: %w", err)
		}
		return files, nil
	}, opts...))

	plan.Finish = func(ctx context.Context, plan *languages.Plan) error {
		kilnJars, d, err := b.classpath(ctx)
		if err != nil {
			return err
		}
		if rt != nil {
			mods, err := b.linked.Get(ctx)
			if err != nil {
				return err
			}
			javaVersion := j.version
			if rt.cross != nil {
				target, err := rt.cross.Get(ctx)
				if err != nil {
					return err
				}
				javaVersion = target.version
			}
			plan.Labels["dev.kiln.java.version"] = javaVersion
			plan.Labels["dev.kiln.java.modules"] = strings.Join(mods, ",")
		}
		// The class path lists the classes first, then resources, then
		// jars, as Gradle and Maven order them.
		classpath := []string{"/" + classesDir}
		if resourcesHost != "" {
			classpath = append(classpath, "/"+resourcesDir)
		}
		if len(d.release) > 0 {
			classpath = append(classpath, "/"+libDir+"/*")
		}
		if len(d.snapshot) > 0 {
			classpath = append(classpath, "/"+snapshotDir+"/*")
		}
		if len(kilnJars) > 0 {
			classpath = append(classpath, "/"+modelJarPath)
		}
		plan.Env = slices.Concat([]string{
			"JAVA_HOME=" + home,
			"PATH=" + home + "/bin:" + contract.Path,
			"CLASSPATH=" + strings.Join(classpath, ":"),
			contract.FProcess("java " + jvmFlags + " " + mainClass),
		}, contract.HTTPMode(contract.UpstreamPort), []string{contract.RawLogs})
		return nil
	}
	return plan, nil
}

// getenv looks a variable up in the pack's environment.
func (p *Pack) getenv(name string) string { return envlist.Get(p.opts.env, name) }

// release is the --release javac compiles for.
func (b *build) release() string {
	if b.fn.Lang == LangJava11 {
		return "11"
	}
	return "17"
}

var mainMethod = regexp.MustCompile(`\bpublic\s+static\s+void\s+main\s*\(`)
var packageLine = regexp.MustCompile(`(?m)^\s*package\s+([\w.]+)\s*;`)
var pomMainClass = regexp.MustCompile(`<mainClass>\s*([\w.$]+)\s*</mainClass>`)

// findMain returns the class the JVM starts: kiln's entrypoint for a
// handler; for lang java without one, MAIN_CLASS, else the pom's
// <mainClass>, else the one source file with a main method.
func findMain(fn languages.Function) (string, error) {
	hasHandler := isFile(filepath.Join(fn.Dir, handlerFile))
	if fn.Lang != LangJava || hasHandler {
		if !hasHandler {
			return "", &languages.SourceError{Path: filepath.Join(fn.Dir, handlerFile), Reason: "no Handler class: " + fn.Lang + " needs " + handlerClass + " extending com.openfaas.model.AbstractHandler"}
		}
		return entrypoint, nil
	}
	if m := fn.BuildArgs["MAIN_CLASS"]; m != "" {
		return m, nil
	}
	if pom, err := os.ReadFile(filepath.Join(fn.Dir, "pom.xml")); err == nil {
		if m := pomMainClass.FindSubmatch(pom); m != nil {
			return string(m[1]), nil
		}
	}
	src := filepath.Join(fn.Dir, "src", "main", "java")
	var found []string
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".java") {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if mainMethod.Match(b) {
			name := strings.TrimSuffix(filepath.Base(p), ".java")
			if m := packageLine.FindSubmatch(b); m != nil {
				name = string(m[1]) + "." + name
			}
			found = append(found, name)
		}
		return nil
	})
	if err != nil && !os.IsNotExist(err) {
		return "", fmt.Errorf("looking for a main class: %w", err)
	}
	switch len(found) {
	case 1:
		return found[0], nil
	case 0:
		return "", &languages.SourceError{Path: src, Reason: "no " + handlerClass + " and no class with a main method: lang java needs one or the other"}
	}
	return "", &languages.SourceError{Path: src, Reason: fmt.Sprintf("several main classes (%s): name one with --build-arg MAIN_CLASS=... or <mainClass> in pom.xml", strings.Join(found, ", "))}
}

func isDir(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}

func isFile(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}
