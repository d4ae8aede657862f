package bases

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"

	"github.com/kiln-build/kiln/internal/contract"
	"github.com/kiln-build/kiln/layers"
)

// fileMode is the mode of generated regular files.
const fileMode fs.FileMode = 0o644

// functionUsers returns the /etc/passwd and /etc/group lines of the
// function's user, under two names: nonroot, as in distroless images, and
// app, as in OpenFaaS templates.
func functionUsers() (passwd, group []string) {
	passwd = []string{
		fmt.Sprintf("nonroot:x:%d:%d:nonroot:/%s:/sbin/nologin", contract.UID, contract.GID, contract.AppDir),
		fmt.Sprintf("app:x:%d:%d:app:/%s:/sbin/nologin", contract.UID, contract.GID, contract.AppDir),
	}
	group = []string{
		fmt.Sprintf("nonroot:x:%d:", contract.GID),
		fmt.Sprintf("app:x:%d:", contract.GID),
	}
	return passwd, group
}

// systemFiles returns what a base needs beside its packages: users and
// groups (unless base-passwd's configure hook writes them, with the same
// function user), name service configuration, /tmp, the function's home,
// and the links of a merged /usr (mergedDirs) when merged is not empty.
func systemFiles(users bool, merged []string) []layers.File {
	var files []layers.File
	if users {
		fnPasswd, fnGroup := functionUsers()
		passwd := strings.Join(append([]string{
			"root:x:0:0:root:/root:/sbin/nologin",
			"nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin",
		}, fnPasswd...), "\n") + "\n"
		group := strings.Join(append([]string{
			"root:x:0:",
			"nobody:x:65534:",
		}, fnGroup...), "\n") + "\n"
		files = append(files,
			layers.Bytes("etc/passwd", fileMode, []byte(passwd)),
			layers.Bytes("etc/group", fileMode, []byte(group)))
	}
	// Go's resolver and glibc both read the hosts line; without the file,
	// glibc would try DNS before /etc/hosts.
	nsswitch := strings.Join([]string{
		"passwd:    files",
		"group:     files",
		"shadow:    files",
		"hosts:     files dns",
		"networks:  files",
		"protocols: files",
		"services:  files",
		"ethers:    files",
		"rpc:       files",
	}, "\n") + "\n"
	files = append(files,
		layers.Bytes("etc/nsswitch.conf", fileMode, []byte(nsswitch)),
		layers.File{Path: "tmp", Mode: fs.ModeDir | fs.ModeSticky | 0o777},
		layers.File{Path: contract.AppDir, Mode: fs.ModeDir | 0o755, UID: contract.UID, GID: contract.GID},
	)
	return append(files, usrLinks(merged)...)
}

// caBundle concatenates the certificates under usr/share/ca-certificates
// in the byte order of their paths, then those under
// usr/local/share/ca-certificates, each ending in a newline: what
// update-ca-certificates writes to /etc/ssl/certs/ca-certificates.crt when
// every certificate is trusted, as Debian's default configuration does.
func caBundle(files []layers.File) ([]byte, error) {
	certs, err := caFiles(files)
	if err != nil {
		return nil, err
	}
	var bundle bytes.Buffer
	for _, c := range certs {
		bundle.Write(c.Data)
		if len(c.Data) > 0 && c.Data[len(c.Data)-1] != '\n' {
			bundle.WriteByte('\n')
		}
	}
	return bundle.Bytes(), nil
}

// caFiles returns the .crt files under usr/share/ca-certificates, then
// those under usr/local/share/ca-certificates, each in the byte order of
// their paths, their content in Data.
func caFiles(files []layers.File) ([]layers.File, error) {
	var certs, local []layers.File
	for _, f := range files {
		isLocal := strings.HasPrefix(f.Path, localCADir)
		if !f.Mode.IsRegular() || !strings.HasSuffix(f.Path, ".crt") || !isLocal && !strings.HasPrefix(f.Path, "usr/share/ca-certificates/") {
			continue
		}
		if f.Source != "" {
			data, err := os.ReadFile(f.Source)
			if err != nil {
				return nil, fmt.Errorf("reading /%s: %w", f.Path, err)
			}
			f.Data, f.Source = data, ""
		}
		if isLocal {
			local = append(local, f)
		} else {
			certs = append(certs, f)
		}
	}
	if len(certs) == 0 {
		return nil, fmt.Errorf("no certificates under /usr/share/ca-certificates")
	}
	byPath := func(a, b layers.File) int { return strings.Compare(a.Path, b.Path) }
	slices.SortFunc(certs, byPath)
	slices.SortFunc(local, byPath)
	return append(certs, local...), nil
}
