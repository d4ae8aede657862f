package bases

import (
	"archive/tar"
	"context"
	"io/fs"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kiln-build/kiln/layers"
	"github.com/kiln-build/kiln/runtime-images/debian/debiantest"
)

func TestMergeUsr(t *testing.T) {
	in := []layers.File{
		layers.Dir("bin", 0o755),
		layers.Symlink("bin/sh", "dash"),
		layers.Bytes("lib64/ld-linux-x86-64.so.2", 0o755, nil),
		layers.Symlink("lib32/x", "/lib/y"),
		layers.Bytes("usr/bin/mawk", 0o755, nil),
		layers.Bytes("binary", 0o644, nil),
		layers.Bytes("etc/bin/x", 0o644, nil),
	}
	tests := []struct {
		arch string
		want []string
	}{
		{"amd64", []string{"usr/bin", "usr/bin/sh -> dash", "usr/lib64/ld-linux-x86-64.so.2", "usr/lib32/x -> /lib/y", "usr/bin/mawk", "binary", "etc/bin/x"}},
		{"arm64", []string{"usr/bin", "usr/bin/sh -> dash", "lib64/ld-linux-x86-64.so.2", "lib32/x -> /lib/y", "usr/bin/mawk", "binary", "etc/bin/x"}},
	}
	for _, tc := range tests {
		t.Run(tc.arch, func(t *testing.T) {
			var got []string
			for _, f := range mergeUsr(in, mergedDirs(tc.arch)) {
				if f.Linkname != "" {
					got = append(got, f.Path+" -> "+f.Linkname)
				} else {
					got = append(got, f.Path)
				}
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("mergeUsr(%s) (-want +got):\n%s", tc.arch, diff)
			}
		})
	}
}

func TestUpdateShells(t *testing.T) {
	template := "# /etc/shells: valid login shells\n/bin/sh\n"
	tests := []struct {
		name      string
		declared  map[string]string
		merged    []string
		wantEtc   string
		wantState string
	}{
		{
			name:      "bookworm's bash and dash, merged /usr",
			declared:  map[string]string{"dash": "/bin/dash\n", "bash": "/bin/bash\n/bin/rbash\n"},
			merged:    mergedDirs("amd64"),
			wantEtc:   "# /etc/shells: valid login shells\n/bin/sh\n/usr/bin/sh\n/bin/bash\n/usr/bin/bash\n/bin/rbash\n/usr/bin/rbash\n/bin/dash\n/usr/bin/dash\n",
			wantState: "/bin/sh\n/usr/bin/sh\n/bin/bash\n/usr/bin/bash\n/bin/rbash\n/usr/bin/rbash\n/bin/dash\n/usr/bin/dash\n",
		},
		{
			name:      "split /usr, comments and blank lines",
			declared:  map[string]string{"zsh": "# comment\n\n/usr/bin/zsh # the Z shell\n"},
			wantEtc:   "# /etc/shells: valid login shells\n/bin/sh\n/usr/bin/zsh \n",
			wantState: "/bin/sh\n/usr/bin/zsh \n",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			declared := make(map[string][]byte)
			for k, v := range tc.declared {
				declared[k] = []byte(v)
			}
			etc, state := updateShells([]byte(template), declared, tc.merged)
			if string(etc) != tc.wantEtc {
				t.Errorf("updateShells() /etc/shells =\n%s\nwant\n%s", etc, tc.wantEtc)
			}
			if string(state) != tc.wantState {
				t.Errorf("updateShells() state =\n%s\nwant\n%s", state, tc.wantState)
			}
		})
	}
}

func TestReplaceFiles(t *testing.T) {
	files := []layers.File{
		layers.Dir("var/run", 0o755),
		layers.Bytes("var/run/pid", 0o644, nil),
		layers.Dir("var/lock", 0o755),
		layers.Bytes("var/lock/x", 0o644, nil),
		layers.Bytes("etc/passwd", 0o644, []byte("old")),
	}
	generated := []layers.File{
		layers.Symlink("var/run", "/run"),
		layers.Dir("var/lock", 0o700),
		layers.Bytes("etc/passwd", 0o644, []byte("new")),
	}
	var got []string
	for _, f := range replaceFiles(files, generated) {
		switch {
		case f.Mode&fs.ModeSymlink != 0:
			got = append(got, f.Path+" -> "+f.Linkname)
		case f.Mode.IsDir():
			got = append(got, f.Path+"/ "+f.Mode.String())
		default:
			got = append(got, f.Path+" = "+string(f.Data))
		}
	}
	want := []string{
		"var/lock/x = ", // below a directory replaced by a directory: kept
		"var/run -> /run",
		"var/lock/ drwx------",
		"etc/passwd = new",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("replaceFiles() (-want +got):\n%s", diff)
	}
}

func TestConfigureHooks(t *testing.T) {
	baseFiles := []layers.File{
		layers.Bytes("usr/share/base-files/dot.profile", 0o644, []byte("profile of root")),
		layers.Bytes("usr/share/base-files/dot.bashrc", 0o644, []byte("bashrc of root")),
		layers.Bytes("usr/share/base-files/profile", 0o644, []byte("system profile")),
		layers.Bytes("usr/share/base-files/motd", 0o644, []byte("motd")),
		layers.Bytes("etc/dpkg/origins/debian", 0o644, []byte("Vendor: Debian")),
	}
	tests := []struct {
		name    string
		pkg     string
		files   []layers.File
		want    map[string]string // path -> content or "-> target"; nil for an error
		wantErr string
	}{
		{
			name: "base-files", pkg: "base-files", files: baseFiles,
			want: map[string]string{
				"root/.profile": "profile of root", "root/.bashrc": "bashrc of root",
				"etc/profile": "system profile", "etc/motd": "motd",
				"etc/dpkg/origins/default": "-> debian",
				"var/run":                  "-> /run", "var/lock": "-> /run/lock", "var/spool/mail": "-> ../mail",
				"usr/local/man": "-> share/man",
			},
		},
		{name: "base-files without its defaults", pkg: "base-files", files: baseFiles[1:], wantErr: "dot.profile"},
		{
			name: "tzdata", pkg: "tzdata", files: []layers.File{layers.Bytes("usr/share/zoneinfo/Etc/UTC", 0o644, nil)},
			want: map[string]string{"etc/localtime": "-> /usr/share/zoneinfo/Etc/UTC", "etc/timezone": "Etc/UTC\n"},
		},
		{name: "tzdata without UTC", pkg: "tzdata", files: nil, wantErr: "Etc/UTC"},
		{
			name: "mawk", pkg: "mawk", files: []layers.File{layers.Bytes("usr/bin/mawk", 0o755, nil)},
			want: map[string]string{
				"usr/bin/awk": "-> /etc/alternatives/awk", "etc/alternatives/awk": "-> /usr/bin/mawk",
				"usr/bin/nawk": "-> /etc/alternatives/nawk", "etc/alternatives/nawk": "-> /usr/bin/mawk",
			},
		},
		{name: "mawk without its program", pkg: "mawk", wantErr: "awk alternative"},
	}
	r := &Recipe{Configure: true, MergedUsr: true}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got []layers.File
			var err error
			for _, h := range hooksFor(tc.pkg, r) {
				var g []layers.File
				g, err = h.run(tc.files)
				if err != nil {
					break
				}
				got = append(got, g...)
			}
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("hooks of %s = %v, want an error naming %s", tc.pkg, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("hooks of %s = %v", tc.pkg, err)
			}
			for p, want := range tc.want {
				f, ok := findFile(got, p)
				if !ok {
					t.Errorf("hooks of %s make no /%s", tc.pkg, p)
					continue
				}
				data, err := fileData(f)
				if err != nil {
					t.Fatal(err)
				}
				gotS := string(data)
				if f.Mode&fs.ModeSymlink != 0 {
					gotS = "-> " + f.Linkname
				}
				if gotS != want {
					t.Errorf("hooks of %s: /%s = %q, want %q", tc.pkg, p, gotS, want)
				}
			}
		})
	}
	if hooks := hooksFor("mawk", &Recipe{}); hooks != nil {
		t.Errorf("hooksFor(mawk) without configure = %d hooks, want none", len(hooks))
	}
}

// TestAssembleConfigured assembles a recipe that merges /usr and
// configures its packages, from stand-ins for bookworm's packages.
func TestAssembleConfigured(t *testing.T) {
	dir := func(p string) debiantest.File { return debiantest.File{Path: p, Type: tar.TypeDir, Mode: 0o755} }
	file := func(p, data string) debiantest.File { return debiantest.File{Path: p, Mode: 0o755, Data: data} }
	link := func(p, target string) debiantest.File {
		return debiantest.File{Path: p, Type: tar.TypeSymlink, Linkname: target}
	}
	m := newStaticMirror(t,
		debiantest.Deb{Name: "base-passwd", Version: "3.6.1", Files: []debiantest.File{
			file("./usr/share/base-passwd/passwd.master", "root:*:0:0:root:/root:/bin/bash\nnobody:*:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"),
			file("./usr/share/base-passwd/group.master", "root:*:0:\nnogroup:*:65534:"),
		}},
		debiantest.Deb{Name: "dash", Version: "0.5.12-2", Files: []debiantest.File{
			dir("./bin/"), file("./bin/dash", "dash"), link("./bin/sh", "dash"),
			file("./usr/share/debianutils/shells.d/dash", "/bin/dash\n"),
		}},
		debiantest.Deb{Name: "debianutils", Version: "5.7", Files: []debiantest.File{
			file("./usr/bin/which.debianutils", "which"),
			file("./usr/share/debianutils/shells", "# /etc/shells: valid login shells\n/bin/sh\n"),
		}},
		debiantest.Deb{Name: "mawk", Version: "1.3.4", Files: []debiantest.File{file("./usr/bin/mawk", "mawk")}},
		debiantest.Deb{Name: "libc6", Version: "2.36", Arch: "amd64", Files: []debiantest.File{
			file("./lib/x86_64-linux-gnu/libc.so.6", "libc"),
			link("./lib64/ld-linux-x86-64.so.2", "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"),
		}},
	)
	r, err := ParseRecipe("shell", []byte(`suites: [bookworm, bookworm-updates, bookworm-security]
architectures: [amd64]
merged_usr: true
configure: true
user: "0:0"
packages: [{name: base-passwd}, {name: dash}, {name: debianutils}, {name: mawk}, {name: libc6}]
`))
	if err != nil {
		t.Fatal(err)
	}
	f := newFetcher(t, m)
	if r.Lock, err = Lock(context.Background(), r, f); err != nil {
		t.Fatalf("Lock() = %v", err)
	}
	b, err := Assemble(context.Background(), r, "amd64", f)
	if err != nil {
		t.Fatalf("Assemble() = %v", err)
	}
	if b.Config.User != "0:0" {
		t.Errorf("Assemble() config user = %q, want 0:0", b.Config.User)
	}
	img, _ := image(t, b)
	files := flatten(t, img)

	tests := []struct {
		path string
		want *fsEntry // nil: absent
	}{
		{"bin", &fsEntry{Type: tar.TypeSymlink, Mode: 0o777, Linkname: "usr/bin"}},
		{"lib", &fsEntry{Type: tar.TypeSymlink, Mode: 0o777, Linkname: "usr/lib"}},
		{"lib64", &fsEntry{Type: tar.TypeSymlink, Mode: 0o777, Linkname: "usr/lib64"}},
		{"sbin", &fsEntry{Type: tar.TypeSymlink, Mode: 0o777, Linkname: "usr/sbin"}},
		{"usr/bin/sh", &fsEntry{Type: tar.TypeSymlink, Mode: 0o777, Linkname: "dash"}},
		{"usr/bin/dash", &fsEntry{Type: tar.TypeReg, Mode: 0o755, Content: "dash"}},
		{"usr/lib64/ld-linux-x86-64.so.2", &fsEntry{Type: tar.TypeSymlink, Mode: 0o777, Linkname: "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"}},
		{"usr/lib/x86_64-linux-gnu/libc.so.6", &fsEntry{Type: tar.TypeReg, Mode: 0o755, Content: "libc"}},
		{"usr/bin/awk", &fsEntry{Type: tar.TypeSymlink, Mode: 0o777, Linkname: "/etc/alternatives/awk"}},
		{"etc/alternatives/awk", &fsEntry{Type: tar.TypeSymlink, Mode: 0o777, Linkname: "/usr/bin/mawk"}},
		{"usr/bin/which", &fsEntry{Type: tar.TypeSymlink, Mode: 0o777, Linkname: "/etc/alternatives/which"}},
		{"etc/passwd", &fsEntry{Type: tar.TypeReg, Mode: 0o644, Content: "root:*:0:0:root:/root:/bin/bash\n" +
			"nobody:*:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n" +
			"nonroot:x:65532:65532:nonroot:/home/app:/sbin/nologin\n" +
			"app:x:65532:65532:app:/home/app:/sbin/nologin\n"}},
		{"etc/group", &fsEntry{Type: tar.TypeReg, Mode: 0o644, Content: "root:*:0:\nnogroup:*:65534:\nnonroot:x:65532:\napp:x:65532:\n"}},
		{"etc/shells", &fsEntry{Type: tar.TypeReg, Mode: 0o644, Content: "# /etc/shells: valid login shells\n/bin/sh\n/usr/bin/sh\n/bin/dash\n/usr/bin/dash\n"}},
		{"home/app", &fsEntry{Type: tar.TypeDir, Mode: 0o755, UID: 65532, GID: 65532}},
		{"lib/x86_64-linux-gnu/libc.so.6", nil},
	}
	for _, tc := range tests {
		t.Run("/"+tc.path, func(t *testing.T) {
			got, ok := files[tc.path]
			switch {
			case tc.want == nil && ok:
				t.Errorf("/%s is in the image, want it under /usr only", tc.path)
			case tc.want != nil && !ok:
				t.Errorf("/%s is not in the image", tc.path)
			case tc.want != nil:
				if diff := cmp.Diff(*tc.want, got); diff != "" {
					t.Errorf("/%s (-want +got):\n%s", tc.path, diff)
				}
			}
		})
	}
}
