// Package debianrepo points a user's Maven and Gradle at Debian's Maven
// repository (/usr/share/maven-repo, the libXXX-java packages), the way a
// user points them at their company's mirror: the tests and benchmarks
// build Java functions on machines that cannot reach Maven Central, and
// kiln itself knows no mirror.
package debianrepo

import (
	"fmt"
	"os"
	"path/filepath"
)

// Dir is Debian's Maven repository.
const Dir = "/usr/share/maven-repo"

// Needed are what the Java samples need of the repository, with the
// Debian packages that provide them.
var Needed = []struct{ Path, Package string }{
	{Dir + "/org/apache/commons/commons-lang3/3.12.0", "libcommons-lang3-java"},
	{Dir + "/org/apache/maven/plugins/maven-dependency-plugin", "libmaven-dependency-plugin-java"},
}

// Missing returns what the repository lacks of Needed, as a sentence, or
// "" when it has everything.
func Missing() string {
	for _, n := range Needed {
		if _, err := os.Stat(n.Path); err != nil {
			return fmt.Sprintf("Debian's Maven repository lacks %s (package %s)", n.Path, n.Package)
		}
	}
	return ""
}

const settings = `<settings>
  <mirrors>
    <mirror><id>debian</id><mirrorOf>*</mirrorOf><url>file://` + Dir + `</url></mirror>
  </mirrors>
</settings>
`

// gradleInit replaces every project's repositories with Debian's.
const gradleInit = `allprojects {
    afterEvaluate { p ->
        p.repositories.clear()
        p.repositories.maven { url 'file://` + Dir + `' }
    }
}
`

// Env writes, under home, a Maven settings.xml that mirrors everything to
// the repository and a Gradle user home whose init script does the same,
// and returns the environment that makes Maven and Gradle read them.
func Env(home string) ([]string, error) {
	m2 := filepath.Join(home, ".m2")
	gradleHome := filepath.Join(home, ".gradle")
	for _, f := range []struct{ path, text string }{
		{filepath.Join(m2, "settings.xml"), settings},
		{filepath.Join(gradleHome, "init.d", "debian.gradle"), gradleInit},
	} {
		if err := os.MkdirAll(filepath.Dir(f.path), 0o755); err != nil {
			return nil, err
		}
		if err := os.WriteFile(f.path, []byte(f.text), 0o644); err != nil {
			return nil, err
		}
	}
	return []string{"MAVEN_OPTS=-Duser.home=" + home, "GRADLE_USER_HOME=" + gradleHome}, nil
}
