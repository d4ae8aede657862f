package java

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kiln-build/kiln/languages"
	"github.com/kiln-build/kiln/layers"
)

// GradleOff, given to WithGradle, makes the pack read build.gradle's plain
// coordinates and resolve them with Maven even where Gradle is installed.
const GradleOff = "off"

// WithGradle sets the Gradle the pack resolves build.gradle with: a path,
// or GradleOff. The default, "", is the handler folder's gradlew, else
// gradle on PATH, else none.
func WithGradle(gradle string) Option {
	return func(o *options) error { o.gradle = gradle; return nil }
}

// gradleFiles are the files of a handler folder that decide what Gradle
// resolves; only they are staged, so Gradle writes nothing into the
// user's folder and an edit of the sources does not resolve again.
var gradleFiles = []string{"build.gradle", "build.gradle.kts", "settings.gradle", "settings.gradle.kts", "gradle.properties"}

// gradleInit is the init script kiln adds to the user's build: a task that
// copies the jars of the root project's runtime class path, but for the
// OpenFaaS model and entrypoint, which kiln supplies.
const gradleInit = `rootProject {
    configurations.all {
        exclude group: 'com.openfaas', module: 'model'
        exclude group: 'com.openfaas', module: 'entrypoint'
    }
    afterEvaluate { p ->
        p.tasks.create('kilnCopyDependencies') {
            doLast {
                def cp = p.configurations.findByName('runtimeClasspath')
                if (cp == null) {
                    throw new GradleException("kiln: the build applies no Java plugin, so it has no runtimeClasspath")
                }
                def out = new File(System.getProperty('kiln.out'))
                out.mkdirs()
                cp.resolvedConfiguration.resolvedArtifacts.each { a ->
                    java.nio.file.Files.copy(a.file.toPath(), new File(out, a.file.name).toPath(), java.nio.file.StandardCopyOption.REPLACE_EXISTING)
                }
            }
        }
    }
}
`

// findGradle returns the Gradle to run for the handler folder, "" for none.
func (b *build) findGradle() string {
	switch g := b.pack.opts.gradle; g {
	case GradleOff:
		return ""
	case "":
	default:
		return g
	}
	if w := filepath.Join(b.fn.Dir, "gradlew"); isExecutable(w) {
		return w
	}
	if p, err := lookPath("gradle", b.pack.getenv("PATH")); err == nil {
		return p
	}
	return ""
}

// gradleDepsKey digests what Gradle's resolution depends on: the build
// files, the Gradle that runs, the JDK and the platform.
func (b *build) gradleDepsKey(gradle string) (v1.Hash, error) {
	// The handler's own gradlew by name (the wrapper's properties, among
	// the files below, pin its Gradle), not by the checkout's path; an
	// installed Gradle by its path, which names its version.
	which := gradle
	if gradle == filepath.Join(b.fn.Dir, "gradlew") {
		which = "gradlew"
	}
	k := layers.NewKey("java/deps-gradle/v2").String(which).String(b.jdk.build).String(b.fn.Platform.String()).String(gradleInit)
	for _, name := range gradleFiles {
		p := filepath.Join(b.fn.Dir, name)
		k.String(name)
		if !isFile(p) {
			k.String("absent")
			continue
		}
		if err := k.File(p); err != nil {
			return v1.Hash{}, err
		}
	}
	// The Maven fallback reads it (resolveGradle).
	if settings := b.settings(); settings != "" {
		k.String("handler settings.xml")
		if err := k.File(settings); err != nil {
			return v1.Hash{}, err
		}
	}
	if catalog := filepath.Join(b.fn.Dir, "gradle"); isDir(catalog) {
		files, err := layers.FromDir(catalog, "gradle")
		if err != nil {
			return v1.Hash{}, err
		}
		if err := k.Files(files); err != nil {
			return v1.Hash{}, err
		}
	}
	return k.Sum(), nil
}

// resolveGradle runs the user's Gradle, their init scripts and
// repositories applying, on a staged copy of the build files, and copies
// the runtime class path's jars into dir/jars.
func (b *build) resolveGradle(ctx context.Context, gradle, dir string) error {
	stage := filepath.Join(dir, "stage")
	if err := os.MkdirAll(stage, 0o755); err != nil {
		return err
	}
	for _, name := range gradleFiles {
		if data, err := os.ReadFile(filepath.Join(b.fn.Dir, name)); err == nil {
			if err := os.WriteFile(filepath.Join(stage, name), data, 0o644); err != nil {
				return err
			}
		}
	}
	if catalog := filepath.Join(b.fn.Dir, "gradle"); isDir(catalog) {
		if err := os.CopyFS(filepath.Join(stage, "gradle"), os.DirFS(catalog)); err != nil {
			return fmt.Errorf("copying %s: %w", catalog, err)
		}
	}
	init := filepath.Join(dir, "kiln-init.gradle")
	if err := os.WriteFile(init, []byte(gradleInit), 0o644); err != nil {
		return err
	}
	out, err := b.run(ctx, stage, gradle, gradleArgs(stage, init, filepath.Join(dir, "jars"))...)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		buildFile := filepath.Join(b.fn.Dir, "build.gradle")
		if !isFile(buildFile) {
			buildFile += ".kts"
		}
		missing := gradleUnresolved(out)
		if len(missing) == 0 && !bytes.Contains(out, []byte("Could not resolve")) {
			// Gradle could not read the build at all, as Debian's Gradle
			// 4.4 cannot read the OpenFaaS templates' (written for 6 and
			// 7): what kiln reads without Gradle still builds.
			if data, rerr := os.ReadFile(buildFile); rerr == nil {
				if coords, perr := gradleDependencies(buildFile, data); perr == nil {
					slog.WarnContext(ctx, "Gradle could not evaluate the build; kiln reads its plain coordinates instead", "gradle", gradle, "file", buildFile, "error", gradleFailure(out))
					if err := os.RemoveAll(stage); err != nil {
						return err
					}
					if len(coords) == 0 {
						return os.MkdirAll(filepath.Join(dir, "jars"), 0o755)
					}
					return b.resolve(ctx, buildFile, generatedPom(coords), b.settings(), dir)
				}
			}
		}
		reason := "Gradle (" + gradle + ") could not resolve the dependencies"
		if len(missing) > 0 {
			reason = "cannot resolve " + strings.Join(missing, ", ")
		}
		return &languages.SourceError{Path: buildFile, Reason: reason, Detail: strings.TrimSpace(string(out))}
	}
	if err := os.MkdirAll(filepath.Join(dir, "jars"), 0o755); err != nil { // a build without dependencies
		return err
	}
	return os.RemoveAll(stage)
}

// gradleArgs forms the Gradle command line: quiet, no daemon left behind,
// the project's cache in the stage rather than the user's folder.
func gradleArgs(stage, init, out string) []string {
	return []string{"-q", "--no-daemon", "--console=plain", "-p", stage, "--project-cache-dir", filepath.Join(stage, ".gradle"), "-I", init, "-Dkiln.out=" + out, "kilnCopyDependencies"}
}

// gradleFailure returns the line after Gradle's "What went wrong:", or
// its last line.
func gradleFailure(out []byte) string {
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	for i, l := range lines {
		if strings.Contains(l, "What went wrong:") && i+1 < len(lines) {
			return strings.TrimSpace(lines[i+1])
		}
	}
	return lines[len(lines)-1]
}

// gradleMissing matches Gradle's "Could not find g:a:v." lines.
var gradleMissing = regexp.MustCompile(`Could not find ([\w.\-]+:[\w.\-]+:[\w.\-]+)\.`)

// gradleUnresolved lists the coordinates Gradle says it could not find.
func gradleUnresolved(out []byte) []string {
	seen := map[string]bool{}
	var coords []string
	for _, m := range gradleMissing.FindAllSubmatch(out, -1) {
		if c := string(m[1]); !seen[c] {
			seen[c] = true
			coords = append(coords, c)
		}
	}
	return coords
}

func isExecutable(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0
}
