//go:build e2e

package e2e

import (
	"encoding/json"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestBuildProgress builds and pushes a Go function with an empty cache
// and --progress plain, then again with the default progress on a stderr
// that is no terminal, with --progress json and with --quiet. stdout is
// the result alone every time; stderr has a line per finished step.
func TestBuildProgress(t *testing.T) {
	reg := startRegistry(t)
	o := kilnOpts{cache: t.TempDir()}
	image := reg.Host + "/e2e/progress:v1"
	build := []string{"build", sample(goHello), "--lang", "golang-middleware", "--image", image, "--name", "hello", "--push"}
	result := regexp.MustCompile(`^` + regexp.QuoteMeta(reg.Host) + `/e2e/progress@sha256:[0-9a-f]{64}\n$`)
	run := func(t *testing.T, args ...string) []string {
		t.Helper()
		r := kiln(t, o, append(build, args...)...)
		if r.code != 0 || !result.MatchString(r.stdout) {
			t.Fatalf("kiln %s: exit %d, stdout %q; want 0 and the image by digest alone\n%s", strings.Join(args, " "), r.code, r.stdout, r)
		}
		if r.stderr == "" {
			return nil
		}
		return strings.Split(strings.TrimSuffix(r.stderr, "\n"), "\n")
	}

	t.Run("cold, plain", func(t *testing.T) {
		lines := run(t, "--progress", "plain")
		checkProgressLines(t, lines)
		at := stepIndex(lines)
		for _, s := range []string{"download", "compile", "test", "layer watchdog", "layer handler binary", "layer static files", "push", "built"} {
			if len(at[s]) == 0 {
				t.Errorf("no %q line in:\n%s", "hello: "+s, strings.Join(lines, "\n"))
			}
		}
		for _, s := range []string{"compile", "test", "layer handler binary", "push", "built"} {
			if len(at[s]) != 1 {
				t.Errorf("%d %q lines, want 1", len(at[s]), "hello: "+s)
			}
		}
		// A build's compile and tests are done before its layer, every
		// layer before the push, and the function's line is last.
		order := []int{at["compile"][0], at["test"][0], at["layer handler binary"][0], at["push"][0], at["built"][0]}
		if !slices.IsSorted(order) || order[4] != len(lines)-1 {
			t.Errorf("lines of compile, test, handler layer, push, built at %v, want in that order, the last at %d", order, len(lines)-1)
		}
		var layers int
		for _, l := range lines {
			if strings.HasPrefix(l, "hello: layer ") {
				layers++
				if at["push"][0] < slices.Index(lines, l) || strings.HasSuffix(l, "(cached)") {
					t.Errorf("line %q: want a layer built before the push", l)
				}
			}
		}
		m := regexp.MustCompile(`^hello: push (\d+) layers, [0-9.]+ (KB|MB) in `).FindStringSubmatch(lines[at["push"][0]])
		if m == nil || m[1] != strconv.Itoa(layers) {
			t.Errorf("push line = %q, want the %d layers and their size", lines[at["push"][0]], layers)
		}
	})

	t.Run("warm, default", func(t *testing.T) {
		lines := run(t)
		checkProgressLines(t, lines)
		at := stepIndex(lines)
		for _, l := range lines {
			if strings.HasPrefix(l, "hello: layer ") && !strings.HasSuffix(l, " (cached)") {
				t.Errorf("warm build line %q, want the layer cached", l)
			}
		}
		for _, s := range []string{"download", "compile", "test"} {
			if len(at[s]) > 0 {
				t.Errorf("warm build has a %q line, want none:\n%s", s, strings.Join(lines, "\n"))
			}
		}
		if len(at["push"]) != 1 || !strings.HasPrefix(lines[at["push"][0]], "hello: push 0 layers in ") {
			t.Errorf("warm push lines %v, want one that pushed 0 layers:\n%s", at["push"], strings.Join(lines, "\n"))
		}
	})

	t.Run("json", func(t *testing.T) {
		kinds := map[string]int{}
		for _, l := range run(t, "--progress", "json") {
			var e struct {
				Kind  string
				Event struct{ Function, Step string }
			}
			if err := json.Unmarshal([]byte(l), &e); err != nil {
				t.Fatalf("stderr line %q is not JSON: %v", l, err)
			}
			kinds[e.Kind]++
		}
		if kinds["step-started"] == 0 || kinds["step-started"] != kinds["step-done"] {
			t.Errorf("JSON kinds = %v, want as many step-done as step-started", kinds)
		}
	})

	t.Run("quiet", func(t *testing.T) {
		if lines := run(t, "--quiet"); len(lines) > 0 {
			t.Errorf("kiln build --quiet stderr = %q, want nothing", lines)
		}
	})
}

// checkProgressLines checks that every line is a step's of hello.
func checkProgressLines(t *testing.T, lines []string) {
	t.Helper()
	if len(lines) == 0 {
		t.Fatal("no progress lines on stderr")
	}
	for _, l := range lines {
		if !strings.HasPrefix(l, "hello: ") || !progressLine.MatchString(l) {
			t.Errorf("stderr line %q, want a finished step of hello", l)
		}
	}
}

// stepIndex maps a step's first words ("compile", "layer watchdog",
// "download", "built") to the indexes of its lines.
func stepIndex(lines []string) map[string][]int {
	at := map[string][]int{}
	for i, l := range lines {
		rest := strings.TrimPrefix(l, "hello: ")
		for _, s := range []string{"download", "compile", "test", "push", "built", "layer watchdog", "layer handler binary", "layer static files"} {
			if strings.HasPrefix(rest, s+" ") {
				at[s] = append(at[s], i)
			}
		}
	}
	return at
}
