//go:build e2e && linux

package bases

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/kiln-build/kiln/internal/contract"
	"github.com/kiln-build/kiln/runtime-images/debian"
)

// TestDebianBase builds the debian base from Debian's archive for each
// architecture and, on the host's, runs what a Dockerfile's RUN lines
// would in it, chrooted into its unpacked file system.
func TestDebianBase(t *testing.T) {
	opts := realMirror(t)
	r, err := Lookup("debian")
	if err != nil {
		t.Fatalf("Lookup(debian) = %v", err)
	}
	f, err := debian.NewFetcher(t.TempDir(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	for _, arch := range r.Architectures {
		t.Run(arch, func(t *testing.T) {
			b, err := Assemble(context.Background(), r, arch, f)
			if err != nil {
				t.Fatalf("Assemble() = %v", err)
			}
			img, _ := image(t, b) // validates the image
			n, compressed, uncompressed := imageSizes(t, img)
			t.Logf("debian/%s: %d layers, %d packages; %d bytes compressed, %d bytes of tar",
				arch, n, len(locked(t, r, arch)), compressed, uncompressed)
			if arch != runtime.GOARCH {
				return
			}
			root := t.TempDir()
			unpackImage(t, img, root)
			script := `set -e
echo $((1+1))
ls / | sort | head -3
echo 'a b c' | awk '{print $2}'
tar --version | head -1
grep --version | head -1
sed --version | head -1
readlink -f /bin/sh
command -v awk
command -v which
bash -c 'echo bash ${BASH_VERSINFO[0]}'
id -un
getent passwd app
echo gzipped | gzip | zcat
find /etc/alternatives -name 'n*'
date -d @86400 +%F
cat /etc/timezone
test "$(grep -c 'BEGIN CERTIFICATE' /etc/ssl/certs/ca-certificates.crt)" -gt 100 && echo over 100 certificates
tail -1 /etc/shells
`
			want := []string{
				"2",
				"bin", "boot", "dev",
				"b",
				"tar (GNU tar) 1.34",
				"grep (GNU grep) 3.8",
				"sed (GNU sed) 4.9",
				"/usr/bin/dash",
				"/usr/bin/awk", "/usr/bin/which",
				"bash 5",
				"root",
				"app:x:65532:65532:app:/home/app:/sbin/nologin",
				"gzipped",
				"/etc/alternatives/nawk",
				"1970-01-02",
				"Etc/UTC",
				"over 100 certificates",
				"/usr/bin/dash",
			}
			got := chrootRun(t, root, "/bin/sh", "-c", script)
			if diff := cmp.Diff(want, strings.Split(strings.TrimSuffix(got, "\n"), "\n")); diff != "" {
				t.Errorf("/bin/sh -c ... in the debian base (-want +got):\n%s", diff)
			}
		})
	}
}

// chrootRun runs a command chrooted into root, as root: the host's, or
// the root of a user namespace of its own when the test runs unprivileged.
// It returns the command's standard output.
func chrootRun(t *testing.T, root string, argv ...string) string {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = "/"
	cmd.Env = []string{"PATH=" + contract.Path, "HOME=/root"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: root}
	if uid, gid := os.Geteuid(), os.Getegid(); uid != 0 {
		cmd.SysProcAttr.Cloneflags = syscall.CLONE_NEWUSER
		cmd.SysProcAttr.UidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: uid, Size: 1}}
		cmd.SysProcAttr.GidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: gid, Size: 1}}
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s in %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(argv, " "), root, err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// unpackImage writes the image's flattened file system into dir:
// directories, regular files, hard links and symlinks, with their modes.
func unpackImage(t *testing.T, img v1.Image, dir string) {
	t.Helper()
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	var dirs []*tar.Header
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, filepath.Clean("/"+hdr.Name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			dirs = append(dirs, hdr) // their modes last, once they are filled
		case tar.TypeReg:
			out, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, hdr.FileInfo().Mode().Perm())
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.Copy(out, tr); err != nil {
				t.Fatal(err)
			}
			if err := out.Close(); err != nil {
				t.Fatal(err)
			}
		case tar.TypeSymlink:
			if err := os.Symlink(hdr.Linkname, p); err != nil {
				t.Fatal(err)
			}
		case tar.TypeLink:
			if err := os.Link(filepath.Join(dir, filepath.Clean("/"+hdr.Linkname)), p); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, hdr := range dirs {
		if err := os.Chmod(filepath.Join(dir, filepath.Clean("/"+hdr.Name)), hdr.FileInfo().Mode()&os.ModePerm|0o700); err != nil {
			t.Fatal(err)
		}
	}
}
