package bases

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/kiln-build/kiln/layers"
	"github.com/kiln-build/kiln/runtime-images/debian"
)

//go:embed *.yaml *.lock.json
var embedded embed.FS

// Recipe says what a runtime base is made of.
type Recipe struct {
	// Name is the base's name, taken from its file name.
	Name string `yaml:"-"`
	// Description says what the base is for, in one line.
	Description string `yaml:"description"`
	// Suites are searched together; the highest version of a package wins.
	// A suite ending in "-security" comes from the security archive.
	Suites []string `yaml:"suites"`
	// Component is the archive component; "main" when empty.
	Component string `yaml:"component,omitempty"`
	// Architectures are the Debian architectures the base is made for.
	Architectures []string `yaml:"architectures"`
	// Packages are installed in every architecture unless they say
	// otherwise.
	Packages []PackageSpec `yaml:"packages"`
	// Exclude names packages never installed; a dependency on one counts
	// as met.
	Exclude []string `yaml:"exclude,omitempty"`
	// Drop lists path patterns (path.Match syntax, no leading slash) left
	// out of every package; a pattern that matches a directory drops all
	// below it.
	Drop []string `yaml:"drop,omitempty"`
	// Env adds KEY=VALUE entries to the image config.
	Env []string `yaml:"env,omitempty"`
	// JavaTrustStore, when set, is where the ca-certificates layer also
	// gets a JKS trust store (password TrustStorePassword) of the CA
	// bundle's certificates: a slash-separated path without a leading
	// slash, "etc/ssl/certs/java/cacerts" as on Debian.
	JavaTrustStore string `yaml:"java_truststore,omitempty"`
	// LocalCAs are trusted beside Debian's CA certificates, as
	// update-ca-certificates trusts /usr/local/share/ca-certificates:
	// each file is kept there, and its certificates follow Debian's in
	// the bundle and the Java trust store. Callers set them (a company's
	// CAs in the executor images); recipes have none.
	LocalCAs []LocalCA `yaml:"-"`
	// MergedUsr lays the base out as bookworm's debootstrap does: /bin,
	// /sbin, /lib (and the architecture's other lib directories) are links
	// into /usr, and what packages ship there is moved to /usr.
	MergedUsr bool `yaml:"merged_usr,omitempty"`
	// Configure does what the packages' maintainer scripts do on a first
	// install, for the packages kiln knows (see configureHooks): /etc/passwd
	// from base-passwd, the alternatives links, base-files' directories.
	Configure bool `yaml:"configure,omitempty"`
	// User is the image config's user, numeric UID:GID; the function's
	// (the image contract's) when empty.
	User string `yaml:"user,omitempty"`

	// Lock pins the packages; nil until one is made.
	Lock *LockFile `yaml:"-"`
}

// PackageSpec names one package of a recipe.
type PackageSpec struct {
	Name string `yaml:"name"`
	// Arch limits the package to these architectures.
	Arch []string `yaml:"arch,omitempty"`
	// Depends installs the package's Depends and Pre-Depends closure too.
	Depends bool `yaml:"depends,omitempty"`
	// Drop lists path patterns left out of this package, as Recipe.Drop.
	Drop []string `yaml:"drop,omitempty"`
}

// Names returns the names of the recipes built in, sorted.
func Names() []string {
	matches, _ := fs.Glob(embedded, "*.yaml")
	names := make([]string, 0, len(matches))
	for _, m := range matches {
		names = append(names, strings.TrimSuffix(m, ".yaml"))
	}
	sort.Strings(names)
	return names
}

// Lookup returns the built-in recipe of that name with its lock, or an
// *UnknownRecipeError.
func Lookup(name string) (*Recipe, error) {
	if name == "" || strings.ContainsAny(name, "/.") {
		return nil, &UnknownRecipeError{Name: name, Known: Names()}
	}
	data, err := embedded.ReadFile(name + ".yaml")
	if err != nil {
		return nil, &UnknownRecipeError{Name: name, Known: Names()}
	}
	r, err := ParseRecipe(name, data)
	if err != nil {
		return nil, err
	}
	lock, err := embedded.ReadFile(LockFileName(name))
	if errors.Is(err, fs.ErrNotExist) {
		return r, nil
	}
	if err != nil {
		return nil, err
	}
	if r.Lock, err = ParseLock(name, lock); err != nil {
		return nil, err
	}
	return r, nil
}

// LockFileName returns the name of a recipe's lock file, which lives next
// to the recipe in runtime-images/bases.
func LockFileName(name string) string { return name + ".lock.json" }

// ParseRecipe reads a recipe file. Unknown fields are mistakes.
func ParseRecipe(name string, data []byte) (*Recipe, error) {
	file := name + ".yaml"
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var r Recipe
	if err := dec.Decode(&r); err != nil {
		return nil, &RecipeError{File: file, Err: err}
	}
	r.Name = name
	if r.Component == "" {
		r.Component = "main"
	}
	if err := r.validate(); err != nil {
		var re *RecipeError
		if errors.As(err, &re) {
			re.File = file
		}
		return nil, err
	}
	return &r, nil
}

func (r *Recipe) validate() error {
	bad := func(field, format string, args ...any) error {
		return &RecipeError{Field: field, Err: fmt.Errorf(format, args...)}
	}
	if len(r.Suites) == 0 {
		return bad("suites", "none given")
	}
	if len(r.Architectures) == 0 {
		return bad("architectures", "none given")
	}
	if len(r.Packages) == 0 {
		return bad("packages", "none given")
	}
	seen := make(map[string]bool)
	for i, p := range r.Packages {
		field := fmt.Sprintf("packages[%d]", i)
		if p.Name == "" {
			return bad(field, "no name")
		}
		if seen[p.Name] {
			return bad(field, "%s is listed twice", p.Name)
		}
		seen[p.Name] = true
		if slices.Contains(r.Exclude, p.Name) {
			return bad(field, "%s is also excluded", p.Name)
		}
		for _, a := range p.Arch {
			if !slices.Contains(r.Architectures, a) {
				return bad(field+".arch", "%s is not one of the recipe's architectures", a)
			}
		}
		if err := validPatterns(p.Drop); err != nil {
			return bad(field+".drop", "%v", err)
		}
	}
	if err := validPatterns(r.Drop); err != nil {
		return bad("drop", "%v", err)
	}
	if p := r.JavaTrustStore; p != "" && (strings.HasPrefix(p, "/") || path.Clean(p) != p || p == "." || strings.HasPrefix(p, "../")) {
		return bad("java_truststore", "%q is not a clean path without a leading slash", p)
	}
	if u := r.User; u != "" {
		uid, gid, ok := strings.Cut(u, ":")
		if _, err := strconv.ParseUint(uid, 10, 32); !ok || err != nil {
			return bad("user", "%q is not a numeric UID:GID", u)
		}
		if _, err := strconv.ParseUint(gid, 10, 32); err != nil {
			return bad("user", "%q is not a numeric UID:GID", u)
		}
	}
	for i, kv := range r.Env {
		if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
			return bad(fmt.Sprintf("env[%d]", i), "%q is not KEY=VALUE", kv)
		}
	}
	return nil
}

func validPatterns(patterns []string) error {
	for _, p := range patterns {
		if _, err := path.Match(p, ""); err != nil || p == "" || strings.HasPrefix(p, "/") {
			return fmt.Errorf("%q is not a path pattern (path.Match syntax, no leading slash)", p)
		}
	}
	return nil
}

// requests returns what the recipe asks for on arch.
func (r *Recipe) requests(arch string) []debian.Request {
	var out []debian.Request
	for _, p := range r.Packages {
		if len(p.Arch) == 0 || slices.Contains(p.Arch, arch) {
			out = append(out, debian.Request{Name: p.Name, Depends: p.Depends})
		}
	}
	return out
}

// spec returns the recipe's entry for a package, if it lists it.
func (r *Recipe) spec(name string) PackageSpec {
	for _, p := range r.Packages {
		if p.Name == name {
			return p
		}
	}
	return PackageSpec{Name: name}
}

// inputs digests the fields that decide a lock, so that a lock made for
// other inputs is known to be stale.
func (r *Recipe) inputs() string {
	k := layers.NewKey("kiln/base/lock-inputs/v1").
		Strings(r.Suites...).
		String(r.Component).
		Strings(r.Architectures...).
		Strings(r.Exclude...)
	for _, p := range r.Packages {
		k.String(p.Name).Strings(p.Arch...).String(strconv.FormatBool(p.Depends))
	}
	return k.Sum().String()
}
