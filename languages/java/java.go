package java

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"

	"github.com/kiln-build/kiln/internal/contract"
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

// WithCacheDir sets where resolved dependencies, the compiled model jar,
// compiled classes and module lists are kept between builds. The default is
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

// build is one function's build in progress.
type build struct {
	pack  *Pack
	fn    languages.Function
	jdk   *jdk
	cache string
}

// Plan implements languages.Pack. It resolves dependencies, compiles and
// lists the runtime's modules up front, each cached on disk, so that the
// steps it returns only copy files, except the runtime's jlink.
func (p *Pack) Plan(ctx context.Context, fn languages.Function) (*languages.Plan, error) {
	if fn.Lang != LangJava11 && fn.Lang != LangJava17 && fn.Lang != LangJava {
		return nil, fmt.Errorf("java pack cannot build lang %q", fn.Lang)
	}
	info, err := os.Stat(fn.Dir)
	if err != nil {
		return nil, &languages.SourceError{Path: fn.Dir, Reason: "handler folder not found"}
	}
	if !info.IsDir() {
		return nil, &languages.SourceError{Path: fn.Dir, Reason: "handler must be a folder, not a file"}
	}
	mainClass, err := findMain(fn)
	if err != nil {
		return nil, err
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
	b := &build{pack: p, fn: fn, jdk: j, cache: cacheDir}
	arch := fn.Platform.Architecture
	if arch == "" {
		arch = runtime.GOARCH
	}
	rt := &runtimeStep{b: b, arch: arch, trustStore: contract.JavaTrustStore, cds: args.cds}
	javaVersion := j.version
	if cross && args.runtime == runtimeJlink {
		if rt.target, err = b.crossJDK(ctx, fn.Platform.String(), arch); err != nil {
			return nil, err
		}
		javaVersion = rt.target.version
	}

	// kilnJars are kiln's own on the class path: the model and
	// entrypoint, for handlers only.
	var kilnJars []string
	if mainClass == entrypoint {
		model, err := b.modelJar(ctx)
		if err != nil {
			return nil, err
		}
		kilnJars = []string{model}
	}
	deps, err := b.dependencies(ctx)
	if err != nil {
		return nil, err
	}
	classes, err := b.compile(ctx, kilnJars, deps)
	if err != nil {
		return nil, err
	}
	resourcesHost := filepath.Join(fn.Dir, "src", "main", "resources")
	if !isDir(resourcesHost) {
		resourcesHost = ""
	}
	if args.native {
		return b.nativePlan(ctx, nativeImage, mainClass, classes, resourcesHost, kilnJars, deps)
	}

	plan := &languages.Plan{
		Base:   baseName,
		Labels: map[string]string{"dev.kiln.lang": fn.Lang, "dev.kiln.java.runtime": args.runtime},
	}
	home := "/" + javaHome
	switch args.runtime {
	case runtimeJRE:
		// Debian's whole JRE, as its package installs it, for comparisons
		// and for code that loads modules jdeps cannot see.
		major, _ := jdkRelease(j.version)
		plan.Packages = []string{"openjdk-" + major + "-jre-headless"}
		home = "/usr/lib/jvm/java-" + major + "-openjdk-" + arch
	default:
		if rt.modules, err = b.modules(ctx, mainClass, classes, kilnJars, deps); err != nil {
			return nil, err
		}
		plan.Steps = []layers.Step{rt}
		plan.Labels["dev.kiln.java.version"] = javaVersion
		plan.Labels["dev.kiln.java.modules"] = strings.Join(rt.modules, ",")
	}
	opts := languages.LayerOptions(fn.Epoch)
	// The class path lists the classes first, then resources, then jars,
	// as Gradle and Maven order them.
	classpath := []string{"/" + classesDir}
	var resources layers.Step
	if resourcesHost != "" {
		files, err := layers.FromDir(resourcesHost, resourcesDir)
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", resourcesHost, err)
		}
		resources = layers.FilesStep("resources", files, opts...)
		classpath = append(classpath, "/"+resourcesDir)
	}
	// Layers go from what changes least to what changes on every edit.
	for _, set := range []struct {
		name, dir string
		jars      []string
	}{{"dependencies", libDir, deps.release}, {"snapshot dependencies", snapshotDir, deps.snapshot}} {
		if len(set.jars) == 0 {
			continue
		}
		var files []layers.File
		for _, jar := range set.jars {
			files = append(files, layers.HostFile(set.dir+"/"+filepath.Base(jar), 0o644, jar))
		}
		plan.Steps = append(plan.Steps, layers.FilesStep(set.name, files, opts...))
		classpath = append(classpath, "/"+set.dir+"/*")
	}
	for _, jar := range kilnJars {
		plan.Steps = append(plan.Steps, layers.FilesStep("openfaas model and entrypoint", []layers.File{layers.HostFile(modelJarPath, 0o644, jar)}, opts...))
		classpath = append(classpath, "/"+modelJarPath)
	}
	if resources != nil {
		plan.Steps = append(plan.Steps, resources)
	}
	classFiles, err := layers.FromDir(classes, classesDir)
	if err != nil {
		return nil, fmt.Errorf("reading compiled classes: %w", err)
	}
	plan.Steps = append(plan.Steps, layers.FilesStep("classes", classFiles, opts...))

	plan.Env = slices.Concat([]string{
		"JAVA_HOME=" + home,
		"PATH=" + home + "/bin:" + contract.Path,
		"CLASSPATH=" + strings.Join(classpath, ":"),
		contract.FProcess("java " + jvmFlags + " " + mainClass),
	}, contract.HTTPMode(contract.UpstreamPort), []string{contract.RawLogs})
	return plan, nil
}

func (p *Pack) getenv(name string) string {
	for i := len(p.opts.env) - 1; i >= 0; i-- {
		if k, v, ok := strings.Cut(p.opts.env[i], "="); ok && k == name {
			return v
		}
	}
	return ""
}

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
