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
	"os/exec"
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

// Pinned puts into dir the wheels a hash-pinned requirements file names,
// as pip downloads them for the host's Python from the index pip is
// configured with (PyPI by default). The download happens once per
// requirements file and machine: the wheels are kept in a folder of the
// system's temporary folder named by the file's hash, and copied from
// there.
func Pinned(dir string, requirements []byte) error {
	sum := sha256.Sum256(requirements)
	cached := filepath.Join(os.TempDir(), fmt.Sprintf("kiln-wheelhouse-%x", sum[:8]))
	if _, err := os.Stat(cached); err != nil {
		if err := download(cached, requirements); err != nil {
			return err
		}
	}
	wheels, err := filepath.Glob(filepath.Join(cached, "*.whl"))
	if err != nil {
		return err
	}
	for _, w := range wheels {
		b, err := os.ReadFile(w)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(w)), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// download runs pip download into a new folder and renames it to dir, so
// that a failed or concurrent download leaves no half folder behind.
func download(dir string, requirements []byte) error {
	tmp, err := os.MkdirTemp(filepath.Dir(dir), filepath.Base(dir)+"-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	req := filepath.Join(tmp, "requirements.txt")
	if err := os.WriteFile(req, requirements, 0o644); err != nil {
		return err
	}
	wheels := filepath.Join(tmp, "wheels")
	cmd := exec.Command("python3", "-m", "pip", "download", "--quiet", "--no-deps", "--require-hashes", "--only-binary=:all:", "--disable-pip-version-check", "-r", req, "-d", wheels)
	cmd.Env = os.Environ()
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("pip download: %w: %s", err, out)
	}
	if err := os.Rename(wheels, dir); err != nil && !os.IsExist(err) {
		if _, statErr := os.Stat(dir); statErr != nil {
			return err
		}
	}
	return nil
}
