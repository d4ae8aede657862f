package java

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/kiln-build/kiln/internal/step"
)

// jdk is the host JDK whose javac, jdeps and jlink the build runs.
type jdk struct {
	home string
	// version is JAVA_VERSION from the release file, e.g. 17.0.15.
	version string
	// build identifies the exact JDK build (implementor and runtime
	// version): jlink's output and javac's are keyed by it.
	build string
}

func (j *jdk) tool(name string) string { return filepath.Join(j.home, "bin", name) }

// noJDK is the one message for every way a JDK can be missing.
const noJDK = "building Java functions needs a JDK: install JDK 17 or later (javac, jdeps and jlink) or set JAVA_HOME"

// findJDK finds the JDK in JAVA_HOME, else the one javac on PATH belongs
// to, and checks it is 17 or later with jlink and its jmods.
func findJDK(ctx context.Context, getenv func(string) string) (*jdk, error) {
	home := getenv("JAVA_HOME")
	if home == "" {
		javac, err := lookPath("javac", getenv("PATH"))
		if err != nil {
			return nil, fmt.Errorf("%s", noJDK)
		}
		if resolved, err := filepath.EvalSymlinks(javac); err == nil {
			javac = resolved
		}
		home = filepath.Dir(filepath.Dir(javac))
	}
	for _, tool := range []string{"javac", "jdeps", "jlink"} {
		if !isFile(filepath.Join(home, "bin", tool)) {
			return nil, fmt.Errorf("%s (%s has no bin/%s)", noJDK, home, tool)
		}
	}
	if !isFile(filepath.Join(home, "jmods", "java.base.jmod")) {
		return nil, fmt.Errorf("%s (%s has no jmods/java.base.jmod; on Debian: apt-get install openjdk-17-jmods)", noJDK, home)
	}
	rel, err := os.ReadFile(filepath.Join(home, "release"))
	if err != nil {
		return nil, fmt.Errorf("%s (reading %s/release: %v)", noJDK, home, err)
	}
	fields := parseRelease(rel)
	j := &jdk{home: home, version: fields["JAVA_VERSION"], build: fields["IMPLEMENTOR"] + " " + fields["JAVA_RUNTIME_VERSION"] + " " + fields["OS_ARCH"]}
	major, _ := strconv.Atoi(strings.SplitN(j.version, ".", 2)[0])
	if major < 17 {
		return nil, fmt.Errorf("%s (%s is Java %s)", noJDK, home, j.version)
	}
	return j, nil
}

// parseRelease reads the KEY="value" lines of a JDK's release file.
func parseRelease(b []byte) map[string]string {
	out := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok {
			out[k] = strings.Trim(v, `"`)
		}
	}
	return out
}

// lookPath is exec.LookPath over the given PATH rather than the process's.
func lookPath(name, path string) (string, error) {
	for _, dir := range filepath.SplitList(path) {
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", exec.ErrNotFound
}

// run runs a JDK or build tool and returns its combined output. Each
// run but a version query is a step named after the tool, javac's
// "compile".
func (b *build) run(ctx context.Context, dir, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(append([]string(nil), b.pack.opts.env...), "JAVA_HOME="+b.jdk.home)
	var s *step.Step
	if tool := filepath.Base(name); tool == "javac" {
		s = step.Start(ctx, "compile")
	} else if !slices.Contains(args, "--version") {
		s = step.Start(ctx, tool)
	}
	out, err := cmd.CombinedOutput()
	s.End(err)
	return out, err
}
