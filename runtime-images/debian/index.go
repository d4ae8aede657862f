package debian

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/klauspost/compress/gzip"
	"github.com/ulikunitz/xz"
	"pault.ag/go/debian/control"
	"pault.ag/go/debian/version"
)

// Package is one binary package of an index: what is needed to download
// and verify it, and its relations for resolving dependencies.
type Package struct {
	Name         string
	Version      string
	Architecture string
	// Suite is the suite whose index listed the package; it decides the
	// archive the file is downloaded from.
	Suite string
	// Filename is the path of the .deb relative to the archive root:
	// "pool/main/t/tzdata/tzdata_2024a-0+deb12u1_all.deb".
	Filename string
	Size     int64
	SHA256   string
	// Depends, PreDepends and Provides are the relation fields as written
	// in the index.
	Depends, PreDepends, Provides string
}

// String returns "name version", the way errors name a package.
func (p Package) String() string { return p.Name + " " + p.Version }

// Index holds the packages of one or more suites for one architecture,
// keeping the highest version of each package name.
type Index struct {
	suites   []string
	arch     string
	packages map[string]Package
	// parsed holds the parsed version of every package in packages.
	parsed map[string]version.Version
}

// Suites returns the suites the index was read from, in order.
func (ix *Index) Suites() []string { return append([]string(nil), ix.suites...) }

// Arch returns the architecture of the index.
func (ix *Index) Arch() string { return ix.arch }

// Len returns the number of package names in the index.
func (ix *Index) Len() int { return len(ix.packages) }

// Package returns the highest version of the named package, or a
// *NotFoundError.
func (ix *Index) Package(name string) (Package, error) {
	p, ok := ix.packages[name]
	if !ok {
		return Package{}, &NotFoundError{Package: name, Suites: ix.Suites(), Arch: ix.arch}
	}
	return p, nil
}

// add keeps p if it is the first or the highest version of its name.
func (ix *Index) add(p Package, v version.Version) {
	if old, ok := ix.parsed[p.Name]; ok && version.Compare(v, old) <= 0 {
		return
	}
	ix.packages[p.Name] = p
	ix.parsed[p.Name] = v
}

func newIndex(arch string, suites ...string) *Index {
	return &Index{
		suites:   suites,
		arch:     arch,
		packages: make(map[string]Package),
		parsed:   make(map[string]version.Version),
	}
}

// Merge combines indexes of one architecture, keeping the highest version
// of every package; on equal versions the earlier index wins. This is how
// bookworm, bookworm-updates and bookworm-security make one view.
func Merge(indexes ...*Index) (*Index, error) {
	if len(indexes) == 0 {
		return nil, errors.New("merging package indexes: none given")
	}
	out := newIndex(indexes[0].arch)
	for _, ix := range indexes {
		if ix.arch != out.arch {
			return nil, fmt.Errorf("merging package indexes: %s is for %s, %s for %s", ix.suites, ix.arch, out.suites, out.arch)
		}
		out.suites = append(out.suites, ix.suites...)
		for name, p := range ix.packages {
			out.add(p, ix.parsed[name])
		}
	}
	return out, nil
}

// ParseIndex reads a Packages file, uncompressed, of the given suite and
// architecture.
func ParseIndex(r io.Reader, suite, arch string) (*Index, error) {
	pr, err := control.NewParagraphReader(r, nil)
	if err != nil {
		return nil, err
	}
	ix := newIndex(arch, suite)
	for {
		para, err := pr.Next()
		if err == io.EOF {
			return ix, nil
		}
		if err != nil {
			return nil, err
		}
		p, v, err := packageOf(para.Values, suite)
		if err != nil {
			return nil, err
		}
		ix.add(p, v)
	}
}

func packageOf(fields map[string]string, suite string) (Package, version.Version, error) {
	p := Package{
		Name:         fields["Package"],
		Version:      fields["Version"],
		Architecture: fields["Architecture"],
		Suite:        suite,
		Filename:     fields["Filename"],
		SHA256:       strings.ToLower(fields["SHA256"]),
		Depends:      fields["Depends"],
		PreDepends:   fields["Pre-Depends"],
		Provides:     fields["Provides"],
	}
	if p.Name == "" || p.Filename == "" || p.SHA256 == "" {
		return p, version.Version{}, fmt.Errorf("index entry %q lacks Package, Filename or SHA256", p.Name)
	}
	v, err := version.Parse(p.Version)
	if err != nil {
		return p, v, fmt.Errorf("index entry %s: version %q: %w", p.Name, p.Version, err)
	}
	if p.Size, err = strconv.ParseInt(fields["Size"], 10, 64); err != nil {
		return p, v, fmt.Errorf("index entry %s: size %q: %w", p.Name, fields["Size"], err)
	}
	return p, v, nil
}

// decompress opens a Packages file by its name's extension.
func decompress(ext string, r io.Reader) (io.Reader, error) {
	switch ext {
	case ".xz":
		return xz.NewReader(r)
	case ".gz":
		return gzip.NewReader(r)
	default:
		return r, nil
	}
}

// Index fetches the Packages index of one suite, component ("main") and
// architecture, verified against the suite's signed Release. Indexes are
// cached by their SHA256, so a Release that has not changed costs one
// small request.
func (f *Fetcher) Index(ctx context.Context, suite, component, arch string) (*Index, error) {
	rel, err := f.release(ctx, suite)
	if err != nil {
		return nil, err
	}
	dir := component + "/binary-" + arch + "/"
	// The variants kiln reads, most preferred first.
	for _, ext := range []string{".xz", ".gz", ""} {
		name := dir + "Packages" + ext
		sum, ok := rel.files[name]
		if !ok {
			continue
		}
		url := f.archive(suite) + "/dists/" + suite + "/" + name
		if rel.acquireByHash {
			url = f.archive(suite) + "/dists/" + suite + "/" + dir + "by-hash/SHA256/" + sum.sha256
		}
		path, err := f.fetchBlob(ctx, blob{
			what:   fmt.Sprintf("the %s index of %s", name, suite),
			url:    url,
			size:   sum.size,
			sha256: sum.sha256,
			ext:    ".Packages" + ext,
		})
		if err != nil {
			return nil, err
		}
		file, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer file.Close()
		r, err := decompress(ext, bufio.NewReaderSize(file, 1<<16))
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", url, err)
		}
		ix, err := ParseIndex(r, suite, arch)
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", url, err)
		}
		return ix, nil
	}
	return nil, fmt.Errorf("%s lists no %sPackages index", rel.url, dir)
}
