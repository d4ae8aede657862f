package java

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/kiln-build/kiln/languages"
	"github.com/kiln-build/kiln/layers"
)

// deps are a function's resolved runtime dependencies, split as Jib does:
// snapshots change far more often than releases.
type deps struct {
	// key identifies the resolution: build file, JDK, platform.
	key      string
	release  []string
	snapshot []string
}

func (d *deps) all() []string { return append(append([]string(nil), d.release...), d.snapshot...) }

// dependencies resolves the function's dependencies with the user's Maven
// from pom.xml, else with the user's Gradle from build.gradle where Gradle
// is installed, else with Maven from the coordinates of build.gradle, and
// caches the jars by the build files' content, the JDK and the platform.
func (b *build) dependencies(ctx context.Context) (*deps, error) {
	pomPath := filepath.Join(b.fn.Dir, "pom.xml")
	gradlePath := filepath.Join(b.fn.Dir, "build.gradle")
	var pom []byte
	var buildFile string
	hasGradleBuild := isFile(gradlePath) || isFile(gradlePath+".kts")
	switch gradle := b.findGradle(); {
	case !isFile(pomPath) && hasGradleBuild && gradle != "":
		key, err := b.gradleDepsKey(gradle)
		if err != nil {
			return nil, err
		}
		dir, err := b.cached(ctx, "deps-gradle", key, func(dir string) error { return b.resolveGradle(ctx, gradle, dir) })
		if err != nil {
			return nil, err
		}
		return jarsIn(key.Hex, dir)
	case !isFile(pomPath) && !isFile(gradlePath) && hasGradleBuild:
		return nil, &languages.SourceError{Path: gradlePath + ".kts", Reason: "a Kotlin build script needs Gradle: install it (gradle on PATH) or add a gradlew"}
	case isFile(pomPath):
		data, err := os.ReadFile(pomPath)
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", pomPath, err)
		}
		pom, buildFile = data, pomPath
	case isFile(gradlePath):
		data, err := os.ReadFile(gradlePath)
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", gradlePath, err)
		}
		coords, err := gradleDependencies(gradlePath, data)
		if err != nil {
			return nil, err
		}
		if len(coords) == 0 {
			return &deps{key: "none"}, nil
		}
		pom, buildFile = generatedPom(coords), gradlePath
	default:
		return &deps{key: "none"}, nil
	}
	k := layers.NewKey("java/deps/v1").String(string(pom)).String(b.jdk.build).String(b.fn.Platform.String())
	settings := b.settings()
	if settings != "" {
		// Its mirrors and repositories decide what resolves. The key is a
		// digest: the credentials it may hold are in no cache file.
		k.String("handler settings.xml")
		if err := k.File(settings); err != nil {
			return nil, fmt.Errorf("hashing %s: %w", settings, err)
		}
	}
	key := k.Sum()
	dir, err := b.cached(ctx, "deps", key, func(dir string) error { return b.resolve(ctx, buildFile, pom, settings, dir) })
	if err != nil {
		return nil, err
	}
	return jarsIn(key.Hex, dir)
}

// jarsIn sorts the jars of a resolution, dir/jars, into releases and
// snapshots.
func jarsIn(key, dir string) (*deps, error) {
	d := &deps{key: key}
	jars, err := filepath.Glob(filepath.Join(dir, "jars", "*.jar"))
	if err != nil {
		return nil, err
	}
	sort.Strings(jars)
	for _, j := range jars {
		if isSnapshot(filepath.Base(j)) {
			d.snapshot = append(d.snapshot, j)
		} else {
			d.release = append(d.release, j)
		}
	}
	return d, nil
}

var timestampedSnapshot = regexp.MustCompile(`-\d{8}\.\d{6}-\d+(-[\w.]+)?\.jar$`)

func isSnapshot(jar string) bool {
	return strings.Contains(jar, "-SNAPSHOT") || timestampedSnapshot.MatchString(jar)
}

// settings returns the handler folder's settings.xml, "" when it has none.
// Plan has checked that it does not lead out of the folder.
func (b *build) settings() string {
	p, err := languages.ManifestPath(b.fn.Dir, "settings.xml")
	if err != nil {
		return ""
	}
	return p
}

// resolve runs `mvn dependency:copy-dependencies` on a copy of the pom in a
// staging folder: nothing is written into the user's folder, and the user's
// Maven configuration (~/.m2/settings.xml, .mvn/) applies. The handler
// folder's settings.xml, when given, takes the place of the user's, as mvn
// -s does: it is read where it is, never copied.
func (b *build) resolve(ctx context.Context, buildFile string, pom []byte, settings, dir string) error {
	mvn, err := lookPath("mvn", b.pack.getenv("PATH"))
	if err != nil {
		return &languages.SourceError{Path: buildFile, Reason: "resolving dependencies needs Maven: install it (mvn on PATH); kiln runs it with your settings.xml"}
	}
	stage := filepath.Join(dir, "stage")
	if err := os.MkdirAll(stage, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(stage, "pom.xml"), pom, 0o644); err != nil {
		return err
	}
	if mvnDir := filepath.Join(b.fn.Dir, ".mvn"); isDir(mvnDir) {
		if err := os.CopyFS(filepath.Join(stage, ".mvn"), os.DirFS(mvnDir)); err != nil {
			return fmt.Errorf("copying %s: %w", mvnDir, err)
		}
	}
	args := []string{"-B", "-q", "-Dstyle.color=never", "-f", filepath.Join(stage, "pom.xml")}
	if settings != "" {
		args = append(args, "-s", settings)
	}
	args = append(args, "dependency:copy-dependencies", "-DincludeScope=runtime", "-DoutputDirectory="+filepath.Join(dir, "jars"))
	out, err := b.run(ctx, stage, mvn, args...)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		reason := "Maven could not resolve the dependencies"
		if missing := unresolved(out); len(missing) > 0 {
			reason = "cannot resolve " + strings.Join(missing, ", ")
		}
		return &languages.SourceError{Path: buildFile, Reason: reason, Detail: strings.TrimSpace(string(ansiEscape.ReplaceAll(out, nil)))}
	}
	return os.RemoveAll(stage)
}

var (
	// ansiEscape matches the colour resets Maven's console prints even
	// in batch mode.
	ansiEscape      = regexp.MustCompile(`\x1b\[[0-9;]*m`)
	missingArtifact = regexp.MustCompile(`(?:Could not find artifact|Failure to find|artifact descriptor for) ([\w.\-]+:[\w.\-]+(?::[\w.\-]+){1,3})`)
	missingList     = regexp.MustCompile(`could not be resolved: ([^\n]+?)(?::? Could not|$)`)
)

// unresolved lists the coordinates Maven says it could not resolve.
func unresolved(out []byte) []string {
	seen := map[string]bool{}
	var coords []string
	add := func(c string) {
		c = strings.TrimSpace(strings.TrimSuffix(c, ","))
		if c != "" && !seen[c] {
			seen[c] = true
			coords = append(coords, c)
		}
	}
	for _, m := range missingArtifact.FindAllSubmatch(out, -1) {
		add(string(m[1]))
	}
	if len(coords) == 0 {
		for _, m := range missingList.FindAllSubmatch(out, -1) {
			for _, c := range strings.Split(string(m[1]), ", ") {
				add(c)
			}
		}
	}
	return coords
}
