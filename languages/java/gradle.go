package java

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"regexp"
	"strings"

	"github.com/kiln-build/kiln/languages"
)

// coordinate is one Maven dependency read from build.gradle.
type coordinate struct {
	group, artifact, version, scope string
}

var (
	// implementation 'g:a:v', api "g:a:v", implementation("g:a:v")
	gradleString = regexp.MustCompile(`^(\w+)\s*\(?\s*['"]([^'"\s:]+):([^'"\s:]+):([^'"\s:@]+)['"]\s*\)?$`)
	// implementation group: 'g', name: 'a', version: 'v'
	gradleMap  = regexp.MustCompile(`^(\w+)\s*\(?\s*group\s*:\s*['"]([^'"]+)['"]\s*,\s*name\s*:\s*['"]([^'"]+)['"]\s*,\s*version\s*:\s*['"]([^'"]+)['"]\s*\)?$`)
	blockStart = regexp.MustCompile(`^dependencies\s*\{$`)
)

// gradleScopes maps the configurations kiln reads to Maven scopes; test
// configurations are skipped, since tests are not part of the image.
var gradleScopes = map[string]string{
	"implementation": "compile",
	"api":            "compile",
	"compile":        "compile",
	"runtimeOnly":    "runtime",
	"runtime":        "runtime",
}

// gradleDependencies reads the top-level dependencies {} block of a
// build.gradle without Gradle: plain coordinates only. Any line it cannot
// read is an error naming that line, rather than a dependency silently
// missing at run time. The OpenFaaS model and entrypoint are skipped: kiln
// supplies its own.
func gradleDependencies(path string, src []byte) ([]coordinate, error) {
	var coords []coordinate
	depth, inBlock := 0, false
	inComment := false
	for i, raw := range strings.Split(string(src), "\n") {
		line := strings.TrimSpace(raw)
		if inComment {
			if _, after, ok := strings.Cut(line, "*/"); ok {
				line, inComment = strings.TrimSpace(after), false
			} else {
				continue
			}
		}
		if before, _, ok := strings.Cut(line, "/*"); ok && !strings.Contains(line, "*/") {
			line, inComment = strings.TrimSpace(before), true
		}
		if before, _, ok := strings.Cut(line, "//"); ok && !strings.ContainsAny(before, `'"`) {
			line = strings.TrimSpace(before)
		}
		if line == "" {
			continue
		}
		if !inBlock {
			if depth == 0 && blockStart.MatchString(line) {
				inBlock = true
				continue
			}
			depth += strings.Count(line, "{") - strings.Count(line, "}")
			continue
		}
		if line == "}" {
			inBlock = false
			continue
		}
		bad := func(why string) error {
			return &languages.SourceError{Path: path, Line: i + 1, Reason: fmt.Sprintf("kiln cannot read %q without Gradle (%s); use plain coordinates such as implementation 'group:name:version', or install Gradle", line, why)}
		}
		m := gradleString.FindStringSubmatch(line)
		if m == nil {
			m = gradleMap.FindStringSubmatch(line)
		}
		if m == nil {
			return nil, bad("not a plain coordinate")
		}
		conf := m[1]
		if strings.HasPrefix(conf, "test") {
			continue
		}
		scope, ok := gradleScopes[conf]
		if !ok {
			return nil, bad("configuration " + conf + " is not one kiln reads")
		}
		if strings.ContainsAny(m[4], "$+[(") {
			return nil, bad("the version is not a fixed one")
		}
		if m[2] == "com.openfaas" && (m[3] == "model" || m[3] == "entrypoint") {
			continue
		}
		coords = append(coords, coordinate{group: m[2], artifact: m[3], version: m[4], scope: scope})
	}
	if inBlock {
		return nil, &languages.SourceError{Path: path, Reason: "the dependencies { block is not closed"}
	}
	return coords, nil
}

// generatedPom writes a pom that depends on coords, for Maven to resolve.
func generatedPom(coords []coordinate) []byte {
	var b bytes.Buffer
	b.WriteString("<project xmlns=\"http://maven.apache.org/POM/4.0.0\">\n  <modelVersion>4.0.0</modelVersion>\n")
	b.WriteString("  <groupId>dev.kiln.generated</groupId>\n  <artifactId>function</artifactId>\n  <version>1.0</version>\n  <dependencies>\n")
	for _, c := range coords {
		fmt.Fprintf(&b, "    <dependency><groupId>%s</groupId><artifactId>%s</artifactId><version>%s</version><scope>%s</scope></dependency>\n",
			xmlEscape(c.group), xmlEscape(c.artifact), xmlEscape(c.version), c.scope)
	}
	b.WriteString("  </dependencies>\n</project>\n")
	return b.Bytes()
}

func xmlEscape(s string) string {
	var b bytes.Buffer
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}
