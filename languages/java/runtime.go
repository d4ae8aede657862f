package java

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kiln-build/kiln/internal/lazy"
	"github.com/kiln-build/kiln/languages"
	"github.com/kiln-build/kiln/layers"
)

// alwaysModules are linked into every runtime: jdk.crypto.ec for TLS
// (jdeps cannot see a provider loaded by name), jdk.localedata is left to
// the user.
var alwaysModules = []string{"jdk.crypto.ec"}

// modules lists the JDK modules the function needs: those of the JDK
// classes reachable from its own classes through jdeps's class-level
// dependencies, TLS's, and JAVA_MODULES from the build arguments.
// jdeps --print-module-deps answers per jar: commons-lang3 alone would pull
// in java.desktop (12 MB) for the two classes that use java.beans. Classes
// loaded by name are invisible either way; JAVA_MODULES adds their modules.
func (b *build) modules(ctx context.Context, mainClass, classes string, kilnJars []string, d *deps) ([]string, error) {
	jars := append(append([]string(nil), kilnJars...), d.all()...)
	// The jars by name and content: their paths are in kiln's cache
	// directory, which differs between machines.
	k := layers.NewKey("java/jdeps/v5").String(b.jdk.build).String(mainClass).Strings(baseNames(jars)...)
	for _, j := range jars {
		if err := k.File(j); err != nil {
			return nil, err
		}
	}
	// The classes by what they reference, not by their bytes: an edit
	// that changes no reference finds the module list cached.
	files, err := layers.FromDir(classes, "")
	if err != nil {
		return nil, err
	}
	for _, f := range files {
		if !f.Mode.IsRegular() || !strings.HasSuffix(f.Path, ".class") {
			continue
		}
		refs, err := classReferences(f.Source)
		if err != nil {
			return nil, err
		}
		k.String(f.Path).Strings(refs...)
	}
	dir, err := b.cached(ctx, "jdeps", k.Sum(), func(dir string) error {
		args := []string{"-verbose:class", "--ignore-missing-deps", "--multi-release", "17"}
		args = append(args, classes)
		args = append(args, jars...)
		out, err := b.run(ctx, b.fn.Dir, b.jdk.tool("jdeps"), args...)
		if err != nil {
			return fmt.Errorf("listing the modules the function uses (jdeps): %w\n%s", err, out)
		}
		roots, err := classNames(classes)
		if err != nil {
			return err
		}
		if mainClass == entrypoint {
			// kiln's entrypoint serves the handler: a root too.
			roots = append(roots, entrypoint)
		}
		return os.WriteFile(filepath.Join(dir, "modules"), []byte(strings.Join(reachableModules(out, roots), ",")+"\n"), 0o644)
	})
	if err != nil {
		return nil, err
	}
	out, err := os.ReadFile(filepath.Join(dir, "modules"))
	if err != nil {
		return nil, err
	}
	set := map[string]bool{"java.base": true}
	add := func(list string) {
		for _, m := range strings.Split(list, ",") {
			if m = strings.TrimSpace(m); m != "" {
				set[m] = true
			}
		}
	}
	add(strings.TrimSpace(string(out)))
	add(strings.Join(alwaysModules, ","))
	add(b.fn.BuildArgs["JAVA_MODULES"])
	mods := make([]string, 0, len(set))
	for m := range set {
		mods = append(mods, m)
	}
	sort.Strings(mods)
	return mods, nil
}

// baseNames returns the last element of each path.
func baseNames(paths []string) []string {
	out := make([]string, len(paths))
	for i, p := range paths {
		out[i] = filepath.Base(p)
	}
	return out
}

// jlinkFlags cut the runtime down; --compress=2 is zip compression of the
// module image, the strongest JDK 17 accepts.
var jlinkFlags = []string{"--strip-debug", "--no-header-files", "--no-man-pages", "--compress=2"}

// unneeded are jlink outputs a running function never reads: jrt-fs.jar
// lets other JDKs' tools read this runtime's modules, classlist only feeds
// -Xshare:dump.
var unneeded = map[string]bool{"lib/jrt-fs.jar": true, "lib/classlist": true}

// cacerts is where a runtime keeps its default trust store.
const cacerts = "lib/security/cacerts"

// runtimeStep links a Java runtime of the modules the function uses into
// /opt/java. It keeps the epoch 0 whatever SOURCE_DATE_EPOCH says, like
// the watchdog, so every function with the same module set shares one
// layer, and its key is the JDK build, the module set and the platform.
// Its key waits for javac and jdeps, which list the modules.
type runtimeStep struct {
	b *build
	// modules and target are known once the key is: prepare sets them.
	modules []string
	// arch is the image's architecture.
	arch string
	// cross finds the JDK whose jmods are linked when arch is not this
	// machine's; nil links the host JDK's own.
	cross *lazy.Value[*targetJDK]
	// target is what cross found.
	target *targetJDK
	// cds adds a class data sharing archive of the JDK's default classes,
	// which jlink makes by running the new runtime: this machine's only.
	cds bool
	// trustStore is the base's Java trust store (no leading slash); the
	// runtime's cacerts links to it instead of carrying the JDK build's
	// own. The default, "", keeps the JDK's.
	trustStore string
}

// Name names the modules once the key is known.
func (s *runtimeStep) Name() string {
	if s.modules == nil {
		return "java runtime"
	}
	return "java runtime (" + strings.Join(s.modules, ",") + ")"
}

// prepare lists the modules and finds the other platform's JDK.
func (s *runtimeStep) prepare(ctx context.Context) error {
	mods, err := s.b.linked.Get(ctx)
	if err != nil {
		return err
	}
	if s.cross != nil {
		if s.target, err = s.cross.Get(ctx); err != nil {
			return err
		}
	}
	s.modules = mods
	return nil
}

func (s *runtimeStep) Key(ctx context.Context) (v1.Hash, error) {
	if err := s.prepare(ctx); err != nil {
		return v1.Hash{}, err
	}
	// The host's jlink generates classes into the runtime even when it
	// links another JDK's jmods: its build is an input either way.
	k := layers.NewKey("java/jlink/v3").
		String(s.b.jdk.build).
		Strings(s.modules...).
		Strings(s.keyedArgs()...).
		String(s.b.fn.Platform.String()).
		String(s.trustStore).
		String(filepath.Base(s.strip()))
	if s.target != nil {
		k.String(s.target.pkg.SHA256)
	}
	return k.Sum(), nil
}

// keyedArgs are jlinkArgs without the other platform's jmods folder,
// which is in kiln's cache directory: the key names those jmods by their
// package's digest, so that machines with other cache directories share
// the layer.
func (s *runtimeStep) keyedArgs() []string {
	args := s.jlinkArgs()
	if i := slices.Index(args, "--module-path"); i >= 0 {
		args = slices.Delete(args, i, i+2)
	}
	return args
}

// jlinkArgs are the flags of jlink apart from the modules and the output.
// For another platform, only Java's debug attributes are stripped by
// jlink: its native stripping runs the host's objcopy, which cannot read
// the other platform's libraries; stripLibraries does that part.
func (s *runtimeStep) jlinkArgs() []string {
	var args []string
	if s.target != nil {
		args = append(args, "--module-path", s.target.jmods)
	}
	for _, f := range jlinkFlags {
		if f == "--strip-debug" && s.target != nil {
			f = "--strip-java-debug-attributes"
		}
		args = append(args, f)
	}
	if s.cds {
		args = append(args, "--generate-cds-archive")
	}
	return args
}

func (s *runtimeStep) Build(ctx context.Context, w io.Writer) error {
	if err := s.prepare(ctx); err != nil {
		return err
	}
	out := filepath.Join(s.b.fn.ScratchDir, "jre")
	args := append([]string{"--add-modules", strings.Join(s.modules, ","), "--output", out}, s.jlinkArgs()...)
	if msg, err := s.b.run(ctx, s.b.fn.ScratchDir, s.b.jdk.tool("jlink"), args...); err != nil {
		if strings.Contains(string(msg), "not found") {
			return &languages.SourceError{Path: s.b.fn.Dir, Reason: "jlink: a module is not in the JDK (check JAVA_MODULES)", Detail: strings.TrimSpace(string(msg))}
		}
		return fmt.Errorf("linking the Java runtime: %w\n%s", err, msg)
	}
	if strip := s.strip(); strip != "" {
		if err := stripLibraries(ctx, strip, out); err != nil {
			return err
		}
	} else {
		slog.WarnContext(ctx, "no strip for this architecture: the Java runtime's native libraries ship with their symbol tables", "arch", s.arch)
	}
	files, err := layers.FromDir(out, javaHome, layers.WithSkip(func(rel string, d fs.DirEntry) bool {
		return unneeded[rel] || (s.trustStore != "" && rel == cacerts)
	}))
	if err != nil {
		return err
	}
	if s.trustStore != "" {
		// A link rather than -Djavax.net.ssl.trustStore in fprocess: every
		// JVM started in the image (a user's own fprocess too) and every
		// reader of the default cacerts, keytool -cacerts included, sees
		// the base's certificates, javax.net.ssl.trustStore stays the
		// user's to set, and Debian's JDK is laid out the same way.
		files = append(files, layers.Symlink(javaHome+"/"+cacerts, "/"+s.trustStore))
	}
	return layers.WriteTar(w, files, layers.WithEpoch(time.Unix(0, 0).UTC()))
}

// stripCommands are tried in order to strip native libraries of an
// architecture: binutils' cross strip, then plain strip for the host's own.
var stripCommands = map[string][]string{
	"amd64": {"x86_64-linux-gnu-strip"},
	"arm64": {"aarch64-linux-gnu-strip"},
}

// strip returns the path of the strip that reads the image architecture's
// libraries, "" if there is none on PATH.
func (s *runtimeStep) strip() string {
	cmds := stripCommands[s.arch]
	if s.arch == runtime.GOARCH {
		cmds = append(slices.Clone(cmds), "strip")
	}
	for _, c := range cmds {
		if p, err := lookPath(c, s.b.pack.getenv("PATH")); err == nil {
			return p
		}
	}
	return ""
}

// stripLibraries removes the symbol tables Debian's JDK keeps in its
// native libraries (libjvm.so alone: 24 MB, 20 MB stripped).
func stripLibraries(ctx context.Context, strip, root string) error {
	var libs []string
	err := filepath.WalkDir(filepath.Join(root, "lib"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() && strings.HasSuffix(p, ".so") {
			libs = append(libs, p)
		}
		return err
	})
	if err != nil {
		return err
	}
	if len(libs) == 0 {
		return nil
	}
	cmd := exec.CommandContext(ctx, strip, append([]string{"--strip-unneeded"}, libs...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("stripping the runtime's libraries: %w\n%s", err, out)
	}
	return nil
}

// classNames lists the classes of a class tree by binary name.
func classNames(root string) ([]string, error) {
	var names []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".class") {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		names = append(names, strings.ReplaceAll(strings.TrimSuffix(filepath.ToSlash(rel), ".class"), "/", "."))
		return nil
	})
	return names, err
}

// reachableModules walks jdeps -verbose:class output ("   from -> to
// where" lines) from the root classes and returns the JDK modules of the
// classes reached, sorted.
func reachableModules(out []byte, roots []string) []string {
	edges := map[string][]string{}
	moduleOf := map[string]string{}
	for _, line := range strings.Split(string(out), "\n") {
		if !strings.HasPrefix(line, " ") {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 4 || f[1] != "->" {
			continue
		}
		edges[f[0]] = append(edges[f[0]], f[2])
		if where := f[3]; strings.HasPrefix(where, "java.") || strings.HasPrefix(where, "jdk.") {
			moduleOf[f[2]] = where
		}
	}
	seen := map[string]bool{}
	mods := map[string]bool{}
	queue := append([]string(nil), roots...)
	for len(queue) > 0 {
		c := queue[len(queue)-1]
		queue = queue[:len(queue)-1]
		if seen[c] {
			continue
		}
		seen[c] = true
		if m, ok := moduleOf[c]; ok {
			// A JDK class: its own dependencies are the module graph's
			// business, which jlink follows.
			mods[m] = true
			continue
		}
		queue = append(queue, edges[c]...)
	}
	list := make([]string, 0, len(mods))
	for m := range mods {
		list = append(list, m)
	}
	sort.Strings(list)
	return list
}
