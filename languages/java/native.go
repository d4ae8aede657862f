package java

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/kiln-build/kiln/languages"
)

// nativeRequested reads the NATIVE build argument.
func nativeRequested(fn languages.Function) (bool, error) {
	switch v := strings.ToLower(fn.BuildArgs["NATIVE"]); v {
	case "", "false", "0", "no":
		return false, nil
	case "true", "1", "yes":
		return true, nil
	default:
		return false, fmt.Errorf("build arg NATIVE=%s: want true or false", v)
	}
}

// findNativeImage finds GraalVM's native-image in GRAALVM_HOME/bin, else
// on PATH.
func findNativeImage(getenv func(string) string) (string, error) {
	if home := getenv("GRAALVM_HOME"); home != "" {
		p := filepath.Join(home, "bin", "native-image")
		if isFile(p) {
			return p, nil
		}
		return "", fmt.Errorf("NATIVE=true needs GraalVM's native-image, and GRAALVM_HOME=%s has no bin/native-image", home)
	}
	if p, err := lookPath("native-image", getenv("PATH")); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("NATIVE=true needs GraalVM's native-image: install GraalVM and set GRAALVM_HOME, or put native-image on PATH")
}

// nativeImageArgs forms the native-image command that compiles the handler,
// the entrypoint and the dependencies into one binary, with the handler
// registered for reflection (reflectConfig is its JSON file).
func nativeImageArgs(nativeImage, mainClass, out, reflectConfig string, classpath []string) []string {
	return []string{
		nativeImage,
		"--no-fallback",
		"-H:ReflectionConfigurationFiles=" + reflectConfig,
		"-cp", strings.Join(classpath, ":"),
		"-o", out,
		mainClass,
	}
}

// reflectionConfig is native-image's reflection configuration for the
// handler class, which the entrypoint loads by name.
func reflectionConfig(class string) string {
	return fmt.Sprintf(`[{"name":%q,"allDeclaredConstructors":true,"allPublicMethods":true}]`+"\n", class)
}
