package console

import (
	"bufio"
	"bytes"
	"crypto/sha512"
	"encoding/base64"
	"regexp"
	"strings"
	"testing"
)

// TestVendorIntegrity checks each vendored file against the sha512 that
// make console-vendor wrote when it took it from the npm package whose
// own sha512 it checked, and the page's integrity attributes against
// them, which the browser checks again.
func TestVendorIntegrity(t *testing.T) {
	list, err := assets.ReadFile("assets/vendor/INTEGRITY")
	if err != nil {
		t.Fatal(err)
	}
	page, err := assets.ReadFile("assets/index.html")
	if err != nil {
		t.Fatal(err)
	}
	files := 0
	sc := bufio.NewScanner(bytes.NewReader(list))
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") || line == "" {
			continue
		}
		name, want, ok := strings.Cut(line, " ")
		if !ok {
			t.Fatalf("INTEGRITY: line %q: want NAME sha512-...", line)
		}
		files++
		t.Run(name, func(t *testing.T) {
			b, err := assets.ReadFile("assets/vendor/" + name)
			if err != nil {
				t.Fatal(err)
			}
			sum := sha512.Sum512(b)
			if got := "sha512-" + base64.StdEncoding.EncodeToString(sum[:]); got != want {
				t.Errorf("sha512 of %s = %s, want %s", name, got, want)
			}
			if strings.HasSuffix(name, ".LICENSE") {
				return
			}
			attr := regexp.MustCompile(`vendor/` + regexp.QuoteMeta(name) + `" integrity="([^"]*)"`).FindSubmatch(page)
			if attr == nil || string(attr[1]) != want {
				t.Errorf("index.html's integrity of %s = %q, want %s", name, attr, want)
			}
		})
	}
	if files != 3 {
		t.Errorf("INTEGRITY lists %d files, want 3 (script, style, licence)", files)
	}
}
