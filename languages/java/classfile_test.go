package java

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// compileClass compiles one class A from src with the real javac and
// returns the class file's path.
func compileClass(t *testing.T, src string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "A.java"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("javac", "-d", dir, filepath.Join(dir, "A.java")).CombinedOutput(); err != nil {
		t.Fatalf("javac: %v\n%s", err, out)
	}
	return filepath.Join(dir, "A.class")
}

func TestClassReferences(t *testing.T) {
	needJDK(t)
	base := `public class A { static final long BIG = 1L << 40; double d = 2.5;
  public String hi(String who) { return "Hello, " + who + BIG; } }`
	tests := []struct {
		name, src string
		same      bool
	}{
		{"string literal edited", `public class A { static final long BIG = 1L << 40; double d = 2.5;
  public String hi(String who) { return "Goodbye, " + who + BIG; } }`, true},
		{"a number edited", `public class A { static final long BIG = 1L << 41; double d = 7.25;
  public String hi(String who) { return "Hello, " + who + BIG; } }`, true},
		{"a new JDK class used", `public class A { static final long BIG = 1L << 40; double d = 2.5;
  public String hi(String who) { return "Hello, " + who + BIG + java.time.Instant.now(); } }`, false},
		{"a JDK type in a signature", `public class A { static final long BIG = 1L << 40; double d = 2.5;
  public String hi(String who) { return "Hello, " + who + BIG; }
  public void sql(java.sql.Connection c) {} }`, false},
	}
	want, err := classReferences(compileClass(t, base))
	if err != nil {
		t.Fatal(err)
	}
	hasLiteral := slices.ContainsFunc(want, func(s string) bool { return strings.Contains(s, "Hello") })
	if !slices.Contains(want, "(Ljava/lang/String;)Ljava/lang/String;") || !slices.Contains(want, "java/lang/Object") || hasLiteral {
		t.Fatalf("classReferences() = %q, want hi's descriptor, java/lang/Object and no string literal", want)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := classReferences(compileClass(t, tc.src))
			if err != nil {
				t.Fatal(err)
			}
			if same := slices.Equal(got, want); same != tc.same {
				t.Errorf("classReferences() = %q; the same as the original's (%q): %v, want %v", got, want, same, tc.same)
			}
		})
	}
	t.Run("truncated", func(t *testing.T) {
		data, err := os.ReadFile(compileClass(t, base))
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range []int{0, 3, 12, len(data) / 2} {
			if _, err := parseReferences(data[:n]); !errors.Is(err, errClassFormat) {
				t.Errorf("parseReferences(first %d bytes) = %v, want errClassFormat", n, err)
			}
		}
	})
}
