package bases

import (
	"fmt"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"

	"github.com/kiln-build/kiln/layers"
)

// mergedDirs returns the top-level directories that bookworm's debootstrap
// turns into links into /usr on arch (its merge_usr), before any package is
// unpacked: bookworm's packages still ship /bin/sh or /lib64/ld-linux-x86-64.so.2,
// and dpkg writes them through those links.
func mergedDirs(arch string) []string {
	dirs := []string{"bin", "sbin", "lib"}
	switch arch {
	case "amd64":
		dirs = append(dirs, "lib32", "lib64", "libx32")
	case "i386":
		dirs = append(dirs, "lib64", "libx32")
	case "ppc64el":
		dirs = append(dirs, "lib64")
	case "s390x":
		dirs = append(dirs, "lib32")
	}
	return dirs
}

// mergeUsr moves the entries under dirs into /usr, where dpkg writing
// through the links would put them. Link targets stay as written, as dpkg
// leaves them.
func mergeUsr(files []layers.File, dirs []string) []layers.File {
	out := make([]layers.File, len(files))
	for i, f := range files {
		if top, _, _ := strings.Cut(f.Path, "/"); slices.Contains(dirs, top) {
			f.Path = "usr/" + f.Path
		}
		out[i] = f
	}
	return out
}

// usrLinks returns the links of a merged /usr and the directories they
// point to.
func usrLinks(dirs []string) []layers.File {
	var out []layers.File
	for _, d := range dirs {
		out = append(out, layers.Symlink(d, "usr/"+d), layers.Dir("usr/"+d, 0o755))
	}
	return out
}

// Group ids of bookworm's base-passwd, for what base-files' postinst
// chowns.
const (
	gidMail = 8
	gidUtmp = 43
)

// configureHooks returns the hooks that do for pkg what its maintainer
// scripts do on a first install, in a recipe with configure set: written
// after reading bookworm's scripts, and only for what lands in the file
// system (no dpkg database, diversions or debconf answers, since the base
// has no dpkg). Packages not named here have no such work, or none that a
// base needs (dash ships /bin/sh itself; its diversion is dpkg's
// bookkeeping).
func configureHooks(pkg string, r *Recipe) []hook {
	switch pkg {
	case "base-files":
		return []hook{{id: "configure/base-files/v1", run: configureBaseFiles}}
	case "base-passwd":
		passwd, group := functionUsers()
		return []hook{{id: "configure/base-passwd/v1 " + strings.Join(passwd, ",") + " " + strings.Join(group, ","), run: configureBasePasswd}}
	case "tzdata":
		return []hook{{id: "configure/tzdata/v1", run: configureTzdata}}
	case "mawk":
		return alternatives(
			alternative{name: "awk", link: "usr/bin/awk", path: "usr/bin/mawk"},
			alternative{name: "nawk", link: "usr/bin/nawk", path: "usr/bin/mawk"},
		)
	case "debianutils":
		return alternatives(alternative{name: "which", link: "usr/bin/which", path: "usr/bin/which.debianutils"})
	case "tar":
		return alternatives(alternative{name: "rmt", link: "usr/sbin/rmt", path: "usr/sbin/rmt-tar"})
	case "coreutils":
		if r.MergedUsr {
			return nil // /usr/bin/touch is /bin/touch already
		}
		return []hook{{id: "configure/coreutils/v1", run: func([]layers.File) ([]layers.File, error) {
			return []layers.File{layers.Symlink("usr/bin/touch", "/bin/touch")}, nil
		}}}
	default:
		return nil
	}
}

// configureBaseFiles does what base-files' postinst does on a first
// install: default dot files and /etc/profile, the directories and links
// of the file system hierarchy, and the login records.
func configureBaseFiles(files []layers.File) ([]layers.File, error) {
	var out []layers.File
	for _, c := range []struct{ from, to string }{
		{"dot.profile", "root/.profile"},
		{"dot.bashrc", "root/.bashrc"},
		{"profile", "etc/profile"},
		{"motd", "etc/motd"},
	} {
		f, ok := findFile(files, "usr/share/base-files/"+c.from)
		if !ok || !f.Mode.IsRegular() {
			return nil, fmt.Errorf("no /usr/share/base-files/%s to install as /%s", c.from, c.to)
		}
		f.Path = c.to
		out = append(out, f)
	}
	if _, ok := findFile(files, "etc/dpkg/origins/debian"); ok {
		out = append(out, layers.Symlink("etc/dpkg/origins/default", "debian"))
	}
	for _, d := range []string{"mnt", "srv", "opt", "etc/opt", "var/opt", "media"} {
		out = append(out, layers.Dir(d, 0o755))
	}
	out = append(out,
		layers.File{Path: "var/mail", Mode: fs.ModeDir | fs.ModeSetgid | 0o775, GID: gidMail},
		layers.Symlink("var/spool/mail", "../mail"),
		layers.File{Path: "run/lock", Mode: fs.ModeDir | fs.ModeSticky | 0o777},
		// The package ships both as directories; the script makes them
		// links.
		layers.Symlink("var/run", "/run"),
		layers.Symlink("var/lock", "/run/lock"),
	)
	// Without /etc/staff-group-for-usr-local, which base-files leaves
	// out, these are root's.
	for _, d := range []string{"", "/share", "/share/man", "/bin", "/games", "/lib", "/include", "/sbin", "/src", "/etc"} {
		out = append(out, layers.Dir("usr/local"+d, 0o755))
	}
	out = append(out,
		layers.Symlink("usr/local/man", "share/man"),
		layers.File{Path: "var/log/wtmp", Mode: 0o664, GID: gidUtmp, Data: []byte{}},
		layers.File{Path: "var/log/btmp", Mode: 0o660, GID: gidUtmp, Data: []byte{}},
		layers.File{Path: "var/log/lastlog", Mode: 0o664, GID: gidUtmp, Data: []byte{}},
	)
	return out, nil
}

// configureBasePasswd does what base-passwd's postinst does when there is
// no /etc/passwd or /etc/group: copies its master files there. The
// function's user, which every base has, is added after Debian's.
func configureBasePasswd(files []layers.File) ([]layers.File, error) {
	passwd, group := functionUsers()
	var out []layers.File
	for _, c := range []struct {
		name  string
		extra []string
	}{{"passwd", passwd}, {"group", group}} {
		f, ok := findFile(files, "usr/share/base-passwd/"+c.name+".master")
		if !ok || !f.Mode.IsRegular() {
			return nil, fmt.Errorf("no /usr/share/base-passwd/%s.master", c.name)
		}
		master, err := fileData(f)
		if err != nil {
			return nil, err
		}
		if len(master) > 0 && master[len(master)-1] != '\n' {
			master = append(master, '\n')
		}
		data := append(master, strings.Join(c.extra, "\n")+"\n"...)
		out = append(out, layers.Bytes("etc/"+c.name, fileMode, data))
	}
	return out, nil
}

// utcZone is the zone tzdata's postinst configures when debconf has no
// other answer, as in a debootstrapped system or Debian's container
// images.
const utcZone = "Etc/UTC"

// configureTzdata does what tzdata's postinst does without a debconf
// answer: /etc/localtime links to UTC's zone file, /etc/timezone names it.
func configureTzdata(files []layers.File) ([]layers.File, error) {
	zone := "usr/share/zoneinfo/" + utcZone
	if _, ok := findFile(files, zone); !ok {
		return nil, fmt.Errorf("no /%s", zone)
	}
	return []layers.File{
		layers.Symlink("etc/localtime", "/"+zone),
		layers.Bytes("etc/timezone", fileMode, []byte(utcZone+"\n")),
	}, nil
}

// alternative is one link update-alternatives makes: link points to
// /etc/alternatives/name, which points to path. Paths have no leading
// slash.
type alternative struct{ name, link, path string }

// alternatives returns a hook that makes the links of a package's
// update-alternatives --install calls, for its only (so highest priority)
// alternative. Slave links to manual pages are left out with the pages.
func alternatives(alts ...alternative) []hook {
	id := "configure/alternatives/v1"
	for _, a := range alts {
		id += " " + a.name + "=" + a.link + ":" + a.path
	}
	return []hook{{id: id, run: func(files []layers.File) ([]layers.File, error) {
		var out []layers.File
		for _, a := range alts {
			if _, ok := findFile(files, a.path); !ok {
				return nil, fmt.Errorf("no /%s for the %s alternative", a.path, a.name)
			}
			out = append(out,
				layers.Symlink(a.link, "/etc/alternatives/"+a.name),
				layers.Symlink("etc/alternatives/"+a.name, "/"+a.path))
		}
		return out, nil
	}}}
}

func findFile(files []layers.File, p string) (layers.File, bool) {
	i := slices.IndexFunc(files, func(f layers.File) bool { return f.Path == p })
	if i < 0 {
		return layers.File{}, false
	}
	return files[i], true
}

// fileData returns a regular file's content.
func fileData(f layers.File) ([]byte, error) {
	if f.Source == "" {
		return slices.Clone(f.Data), nil
	}
	data, err := os.ReadFile(f.Source)
	if err != nil {
		return nil, fmt.Errorf("reading /%s: %w", f.Path, err)
	}
	return data, nil
}

// replaceFiles returns files without the entries generated replaces (the
// same path, or a path below a generated non-directory), then generated.
func replaceFiles(files, generated []layers.File) []layers.File {
	if len(generated) == 0 {
		return files
	}
	replaced := make(map[string]layers.File, len(generated))
	for _, g := range generated {
		replaced[g.Path] = g
	}
	out := make([]layers.File, 0, len(files)+len(generated))
	for _, f := range files {
		if !isReplaced(f.Path, replaced) {
			out = append(out, f)
		}
	}
	return append(out, generated...)
}

func isReplaced(p string, replaced map[string]layers.File) bool {
	if _, ok := replaced[p]; ok {
		return true
	}
	for d := path.Dir(p); d != "."; d = path.Dir(d) {
		if g, ok := replaced[d]; ok && !g.Mode.IsDir() {
			return true
		}
	}
	return false
}
