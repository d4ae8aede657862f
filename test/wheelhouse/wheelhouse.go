// Package wheelhouse writes pure-Python wheels into a folder that pip
// installs from: no package index is reachable on the machines the tests
// and benchmarks run on.
package wheelhouse

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Write writes project's version as a pure-Python wheel into dir, as a
// build backend makes one: the files, then METADATA, WHEEL and a RECORD
// that lists every file with its hash. It returns the wheel's path.
func Write(dir, project, version string, files map[string]string) (string, error) {
	dist := strings.ReplaceAll(project, "-", "_")
	info := dist + "-" + version + ".dist-info/"
	all := map[string]string{
		info + "METADATA": fmt.Sprintf("Metadata-Version: 2.1\nName: %s\nVersion: %s\n", strings.ReplaceAll(project, "_", "-"), version),
		info + "WHEEL":    "Wheel-Version: 1.0\nGenerator: kiln-test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
	}
	for name, content := range files {
		all[name] = content
	}
	names := make([]string, 0, len(all))
	for name := range all {
		names = append(names, name)
	}
	sort.Strings(names)
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	var record strings.Builder
	for _, name := range names {
		w, err := zw.Create(name)
		if err != nil {
			return "", err
		}
		if _, err := w.Write([]byte(all[name])); err != nil {
			return "", err
		}
		sum := sha256.Sum256([]byte(all[name]))
		fmt.Fprintf(&record, "%s,sha256=%s,%d\n", name, base64.RawURLEncoding.EncodeToString(sum[:]), len(all[name]))
	}
	record.WriteString(info + "RECORD,,\n")
	w, err := zw.Create(info + "RECORD")
	if err != nil {
		return "", err
	}
	if _, err := w.Write([]byte(record.String())); err != nil {
		return "", err
	}
	if err := zw.Close(); err != nil {
		return "", err
	}
	path := filepath.Join(dir, dist+"-"+version+"-py3-none-any.whl")
	return path, os.WriteFile(path, buf.Bytes(), 0o644)
}

// Env is the environment that makes pip install from dir and nowhere else.
func Env(dir string) []string {
	return []string{"PIP_NO_INDEX=1", "PIP_FIND_LINKS=" + dir, "PIP_CONFIG_FILE=" + os.DevNull}
}
