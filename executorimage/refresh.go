package executorimage

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/runtime-images/bases"
)

// Refresh pins the inputs the spec names as their sources serve them now:
// the Go toolchain zips, whose go.sum hash must be the checksum
// database's; Node and npm's integrity from the npm registry; the Debian
// groups resolved on top of the debian base's lock, from the mirror's
// signed indexes (deb). The zips are kept in store, so that a build after
// a refresh downloads nothing again.
func Refresh(ctx context.Context, store *cache.Store, deb bases.Fetcher, opts ...Option) (*Lock, error) {
	o, err := newOptions(opts)
	if err != nil {
		return nil, err
	}
	s := o.spec
	dl := &downloads{store: store, client: o.client, goProxy: o.goProxy, npmRegistry: o.npmRegistry}
	r, err := bases.Lookup(DebianBase)
	if err != nil {
		return nil, err
	}
	baseLock, err := r.Lock.Digest()
	if err != nil {
		return nil, err
	}
	l := &Lock{
		Inputs: s.inputs(), Go: map[string]GoToolchain{}, Node: map[string]NPMPackage{},
		DebianBaseLock: baseLock, Debian: map[string]map[string][]bases.LockedPackage{},
	}
	for g, names := range s.Debian {
		l.Debian[g] = map[string][]bases.LockedPackage{}
		for _, arch := range s.Architectures {
			pkgs, err := bases.Extend(ctx, r, arch, names, deb)
			if err != nil {
				return nil, fmt.Errorf("locking the Debian group %s: %w", g, err)
			}
			l.Debian[g][arch] = pkgs
		}
	}
	for _, arch := range s.Architectures {
		if l.Go[arch], err = lockGo(ctx, dl, o.sumDB, s.Go, arch); err != nil {
			return nil, err
		}
		na, _ := nodeArch(arch)
		if l.Node[arch], err = lockNPM(ctx, dl, "node-linux-"+na, s.Node); err != nil {
			return nil, err
		}
	}
	if l.NPM, err = lockNPM(ctx, dl, "npm", s.NPM); err != nil {
		return nil, err
	}
	return l, nil
}

// lockGo downloads the toolchain zip into the cache and pins it, after
// checking its go.sum hash against the checksum database's.
func lockGo(ctx context.Context, dl *downloads, sumDB, goVersion, arch string) (GoToolchain, error) {
	t := GoToolchain{Version: goModuleVersion(goVersion, arch)}
	dir, remove, err := dl.store.TempDir("go-lock-")
	if err != nil {
		return t, err
	}
	defer remove()
	zipPath := filepath.Join(dir, "toolchain.zip")
	if err := os.WriteFile(zipPath, nil, 0o600); err != nil {
		return t, err
	}
	if err := dl.fetch(ctx, dl.goProxy+"/"+toolchainModule+"/@v/"+t.Version+".zip", zipPath); err != nil {
		return t, err
	}
	if t.Hash, err = zipHash(zipPath); err != nil {
		return t, fmt.Errorf("hashing the Go toolchain %s: %w", t.Version, err)
	}
	want, err := sumDBHash(ctx, dl, sumDB, t.Version)
	if err != nil {
		return t, err
	}
	if want != t.Hash {
		return t, fmt.Errorf("the Go toolchain %s from %s hashes to %s, the checksum database says %s", t.Version, dl.goProxy, t.Hash, want)
	}
	f, err := os.Open(zipPath)
	if err != nil {
		return t, err
	}
	defer f.Close()
	h := sha256.New()
	if t.Size, err = io.Copy(h, f); err != nil {
		return t, err
	}
	t.SHA256 = hex.EncodeToString(h.Sum(nil))
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return t, err
	}
	l, err := dl.store.File(ctx, cache.Toolchains, t.SHA256+".zip", cache.SHA256(t.SHA256, t.Size), func(path string) error {
		out, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
		if err != nil {
			return err
		}
		_, err = io.Copy(out, f)
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		return err
	})
	if err != nil {
		return t, err
	}
	l.Close()
	return t, nil
}

// sumDBHash returns the go.sum hash the checksum database holds for the
// toolchain module version.
func sumDBHash(ctx context.Context, dl *downloads, sumDB, version string) (string, error) {
	body, err := dl.get(ctx, sumDB+"/lookup/"+toolchainModule+"@"+version)
	if err != nil {
		return "", err
	}
	defer body.Close()
	prefix := toolchainModule + " " + version + " "
	sc := bufio.NewScanner(body)
	for sc.Scan() {
		if h, ok := strings.CutPrefix(sc.Text(), prefix); ok {
			return h, nil
		}
	}
	if err := sc.Err(); err != nil {
		return "", fmt.Errorf("reading the checksum database's line of %s: %w", version, err)
	}
	return "", fmt.Errorf("the checksum database has no line for %s@%s", toolchainModule, version)
}

// lockNPM pins a package version from the registry's metadata.
func lockNPM(ctx context.Context, dl *downloads, pkg, version string) (NPMPackage, error) {
	p := NPMPackage{Package: pkg, Version: version}
	body, err := dl.get(ctx, dl.npmRegistry+"/"+pkg+"/"+version)
	if err != nil {
		return p, err
	}
	defer body.Close()
	var meta struct {
		Dist struct{ Integrity string }
	}
	if err := json.NewDecoder(body).Decode(&meta); err != nil {
		return p, fmt.Errorf("reading %s@%s's metadata: %w", pkg, version, err)
	}
	p.Integrity = meta.Dist.Integrity
	if _, err := p.sha512(); err != nil {
		return p, fmt.Errorf("%s@%s: %w", pkg, version, err)
	}
	return p, nil
}
