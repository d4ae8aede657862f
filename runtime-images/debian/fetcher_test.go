package debian_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kiln-build/kiln/runtime-images/debian"
	"github.com/kiln-build/kiln/runtime-images/debian/debiantest"
)

func newFetcher(t *testing.T, m *debiantest.Mirror, opts ...debian.Option) (*debian.Fetcher, string) {
	t.Helper()
	cache := t.TempDir()
	f, err := debian.NewFetcher(cache, append(m.Options(), opts...)...)
	if err != nil {
		t.Fatalf("NewFetcher() = %v", err)
	}
	return f, cache
}

func TestIndexHighestVersionAcrossSuites(t *testing.T) {
	pkgs := func(versions ...string) map[string][]debiantest.Deb {
		var debs []debiantest.Deb
		for i, v := range versions {
			debs = append(debs, debiantest.Deb{Name: []string{"tzdata", "libfoo", "base-files"}[i], Version: v})
		}
		return map[string][]debiantest.Deb{"amd64": debs}
	}
	m := debiantest.NewMirror(t,
		debiantest.Suite{Name: "bookworm", Packages: pkgs("2024a-0+deb12u1", "1:1.0-1", "12.4+deb12u5")},
		debiantest.Suite{Name: "bookworm-updates", IndexCompression: "gz", Packages: pkgs("2025b-0+deb12u1", "1.9-1")},
		debiantest.Suite{Name: "bookworm-security", AcquireByHash: true, Packages: pkgs("2024a-0+deb12u2")},
	)
	f, _ := newFetcher(t, m)
	ctx := context.Background()
	var indexes []*debian.Index
	for _, suite := range []string{"bookworm", "bookworm-updates", "bookworm-security"} {
		ix, err := f.Index(ctx, suite, "main", "amd64")
		if err != nil {
			t.Fatalf("Index(%s) = %v", suite, err)
		}
		indexes = append(indexes, ix)
	}
	merged, err := debian.Merge(indexes...)
	if err != nil {
		t.Fatalf("Merge() = %v", err)
	}
	tests := []struct {
		name, pkg, version, suite string
	}{
		{"newer upstream in updates", "tzdata", "2025b-0+deb12u1", "bookworm-updates"},
		{"epoch beats a higher upstream", "libfoo", "1:1.0-1", "bookworm"},
		{"only in the release", "base-files", "12.4+deb12u5", "bookworm"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := merged.Package(tc.pkg)
			if err != nil {
				t.Fatalf("Package(%s) = %v", tc.pkg, err)
			}
			if p.Version != tc.version || p.Suite != tc.suite {
				t.Errorf("Package(%s) = %s from %s, want %s from %s", tc.pkg, p.Version, p.Suite, tc.version, tc.suite)
			}
			if want := m.Package(t, tc.suite, "amd64", tc.pkg); p.SHA256 != want.SHA256 || p.Filename != want.Filename || p.Size != want.Size {
				t.Errorf("Package(%s) = %+v, want %+v", tc.pkg, p, want)
			}
		})
	}
	t.Run("security pool is fetched from the security archive", func(t *testing.T) {
		ix, err := debian.Merge(indexes[0], indexes[2])
		if err != nil {
			t.Fatal(err)
		}
		p, err := ix.Package("tzdata")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Download(ctx, p); err != nil {
			t.Fatalf("Download() = %v", err)
		}
		if got := m.Requests("/debian-security/" + p.Filename); got != 1 {
			t.Errorf("requests for %s = %d, want 1", p.Filename, got)
		}
	})
	t.Run("missing package names suites and arch", func(t *testing.T) {
		_, err := merged.Package("openjdk-17-jre-headless")
		var nf *debian.NotFoundError
		if !errors.As(err, &nf) {
			t.Fatalf("Package() = %v, want a *NotFoundError", err)
		}
		for _, want := range []string{"openjdk-17-jre-headless", "bookworm-security", "amd64"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("Package() = %q, want it to name %s", err, want)
			}
		}
	})
}

func TestIndexVerification(t *testing.T) {
	suite := debiantest.Suite{Name: "bookworm", Packages: map[string][]debiantest.Deb{"amd64": {{Name: "netbase", Version: "6.4"}}}}
	expiring := suite
	expiring.ValidUntil = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	detached := suite
	detached.NoInRelease = true
	tests := []struct {
		name   string
		suite  debiantest.Suite
		setup  func(t *testing.T, m *debiantest.Mirror) []debian.Option
		ask    string
		check  func(error) bool
		naming string
	}{{
		name:  "signed by the keyring",
		suite: suite,
		setup: func(*testing.T, *debiantest.Mirror) []debian.Option { return nil },
	}, {
		name:  "Release and Release.gpg without InRelease",
		suite: detached,
		setup: func(*testing.T, *debiantest.Mirror) []debian.Option { return nil },
	}, {
		name:  "signed by another key",
		suite: suite,
		setup: func(t *testing.T, m *debiantest.Mirror) []debian.Option {
			return []debian.Option{debian.WithKeyring(debiantest.WriteKeyring(t, debiantest.NewKey(t)))}
		},
		check:  isError[*debian.SignatureError],
		naming: "/dists/bookworm/InRelease",
	}, {
		name:  "detached signature by another key",
		suite: detached,
		setup: func(t *testing.T, m *debiantest.Mirror) []debian.Option {
			return []debian.Option{debian.WithKeyring(debiantest.WriteKeyring(t, debiantest.NewKey(t)))}
		},
		check:  isError[*debian.SignatureError],
		naming: "/dists/bookworm/Release",
	}, {
		name:  "tampered InRelease",
		suite: suite,
		setup: func(t *testing.T, m *debiantest.Mirror) []debian.Option {
			data := fetch(t, m.URL()+"/dists/bookworm/InRelease")
			m.Replace("/debian/dists/bookworm/InRelease", []byte(strings.Replace(string(data), "Codename: bookworm", "Codename: bookwork", 1)))
			return nil
		},
		check:  isError[*debian.SignatureError],
		naming: "/dists/bookworm/InRelease",
	}, {
		name:  "missing keyring",
		suite: suite,
		setup: func(t *testing.T, m *debiantest.Mirror) []debian.Option {
			return []debian.Option{debian.WithKeyring(filepath.Join(t.TempDir(), "none.gpg"))}
		},
		check:  isError[*debian.KeyringError],
		naming: "WithKeyring",
	}, {
		name:  "Packages does not match the Release",
		suite: suite,
		setup: func(t *testing.T, m *debiantest.Mirror) []debian.Option {
			m.Replace("/debian/dists/bookworm/main/binary-amd64/Packages.xz", []byte("not the index"))
			return nil
		},
		check:  isError[*debian.ChecksumError],
		naming: "main/binary-amd64/Packages.xz",
	}, {
		name:   "Release of another suite",
		suite:  suite,
		setup:  func(*testing.T, *debiantest.Mirror) []debian.Option { return nil },
		ask:    "bookworm-updates",
		naming: "not of bookworm-updates",
	}, {
		name:  "expired Release",
		suite: expiring,
		setup: func(*testing.T, *debiantest.Mirror) []debian.Option {
			return []debian.Option{debian.WithClock(func() time.Time { return time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC) })}
		},
		naming: "expired",
	}, {
		name:  "Release still valid",
		suite: expiring,
		setup: func(*testing.T, *debiantest.Mirror) []debian.Option {
			return []debian.Option{debian.WithClock(func() time.Time { return time.Date(2029, 1, 1, 0, 0, 0, 0, time.UTC) })}
		},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := debiantest.NewMirror(t, tc.suite)
			if tc.ask != "" {
				// Serve bookworm's Release where bookworm-updates' belongs.
				for _, name := range []string{"InRelease", "Release", "Release.gpg"} {
					m.Replace("/debian/dists/"+tc.ask+"/"+name, fetch(t, m.URL()+"/dists/bookworm/"+name))
				}
			}
			f, _ := newFetcher(t, m, tc.setup(t, m)...)
			ask := tc.suite.Name
			if tc.ask != "" {
				ask = tc.ask
			}
			ix, err := f.Index(context.Background(), ask, "main", "amd64")
			if tc.naming == "" {
				if err != nil {
					t.Fatalf("Index() = %v, want no error", err)
				}
				if _, err := ix.Package("netbase"); err != nil {
					t.Errorf("Package(netbase) = %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Index() = nil, want an error naming %q", tc.naming)
			}
			if !strings.Contains(err.Error(), tc.naming) {
				t.Errorf("Index() = %q, want it to name %q", err, tc.naming)
			}
			if tc.check != nil && !tc.check(err) {
				t.Errorf("Index() = %T %v, want another error type", err, err)
			}
		})
	}
}

func isError[T error](err error) bool {
	var target T
	return errors.As(err, &target)
}

func fetch(t *testing.T, url string) []byte {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s, %v", url, resp.Status, err)
	}
	return data
}

func TestDownload(t *testing.T) {
	m := debiantest.NewMirror(t, debiantest.Suite{Name: "bookworm", Packages: map[string][]debiantest.Deb{
		"amd64": {{Name: "tzdata", Version: "2024a-0+deb12u1", Files: []debiantest.File{{Path: "./usr/share/zoneinfo/UTC", Mode: 0o644, Data: "TZif"}}}},
	}})
	ctx := context.Background()
	pinned := m.Package(t, "bookworm", "amd64", "tzdata")

	t.Run("downloads once, then reuses the cache", func(t *testing.T) {
		f, cache := newFetcher(t, m)
		first, err := f.Download(ctx, pinned)
		if err != nil {
			t.Fatalf("Download() = %v", err)
		}
		if want := filepath.Join(cache, "debian", "sha256", pinned.SHA256+".deb"); first != want {
			t.Errorf("Download() = %s, want %s", first, want)
		}
		before := m.Requests(m.PackagePath(pinned))
		second, err := f.Download(ctx, pinned)
		if err != nil || second != first {
			t.Fatalf("second Download() = %s, %v, want %s", second, err, first)
		}
		if got := m.Requests(m.PackagePath(pinned)); got != before {
			t.Errorf("requests after a cached Download() = %d, want %d", got, before)
		}
	})

	t.Run("corrupt cache entry is fetched again", func(t *testing.T) {
		f, _ := newFetcher(t, m)
		path, err := f.Download(ctx, pinned)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := os.ReadFile(path)
		if err := os.WriteFile(path, append([]byte("x"), want[1:]...), 0o644); err != nil {
			t.Fatal(err)
		}
		before := m.Requests(m.PackagePath(pinned))
		if _, err := f.Download(ctx, pinned); err != nil {
			t.Fatalf("Download() = %v", err)
		}
		if got := m.Requests(m.PackagePath(pinned)); got != before+1 {
			t.Errorf("requests = %d, want %d", got, before+1)
		}
		if got, _ := os.ReadFile(path); string(got) != string(want) {
			t.Errorf("cached file after refetch differs from the package")
		}
	})

	mismatches := []struct {
		name   string
		change func(*debian.Package)
	}{
		{"sha256", func(p *debian.Package) { p.SHA256 = strings.Repeat("0", 64) }},
		{"size", func(p *debian.Package) { p.Size-- }},
		{"larger", func(p *debian.Package) { p.Size++ }},
	}
	for _, tc := range mismatches {
		t.Run("pinned "+tc.name+" differs", func(t *testing.T) {
			f, cache := newFetcher(t, m)
			p := pinned
			tc.change(&p)
			_, err := f.Download(ctx, p)
			if !isError[*debian.ChecksumError](err) {
				t.Fatalf("Download() = %v, want a *ChecksumError", err)
			}
			if !strings.Contains(err.Error(), "tzdata 2024a-0+deb12u1") {
				t.Errorf("Download() = %q, want it to name the package", err)
			}
			if left := listFiles(t, cache); len(left) != 0 {
				t.Errorf("cache after a mismatch holds %v, want nothing", left)
			}
		})
	}
}

func TestRetries(t *testing.T) {
	m := debiantest.NewMirror(t, debiantest.Suite{Name: "bookworm", Packages: map[string][]debiantest.Deb{
		"amd64": {{Name: "netbase", Version: "6.4"}},
	}})
	p := m.Package(t, "bookworm", "amd64", "netbase")
	tests := []struct {
		name         string
		retries      int
		failures     int
		wantErr      bool
		wantRequests int
	}{
		{"recovers within the retries", 3, 2, false, 3},
		{"gives up after the retries", 2, 10, true, 3},
		{"no retries", 0, 1, true, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, _ := newFetcher(t, m, debian.WithRetries(tc.retries))
			path := m.PackagePath(p)
			before := m.Requests(path)
			m.Fail(path, tc.failures)
			defer m.Fail(path, 0)
			_, err := f.Download(context.Background(), p)
			if (err != nil) != tc.wantErr {
				t.Errorf("Download() = %v, want error %v", err, tc.wantErr)
			}
			if got := m.Requests(path) - before; got != tc.wantRequests {
				t.Errorf("requests = %d, want %d", got, tc.wantRequests)
			}
		})
	}
	t.Run("404 is not retried", func(t *testing.T) {
		f, _ := newFetcher(t, m, debian.WithRetries(5))
		missing := p
		missing.Filename = "pool/main/n/netbase/netbase_9_all.deb"
		_, err := f.Download(context.Background(), missing)
		if !isError[*debian.HTTPError](err) {
			t.Errorf("Download() = %v, want an *HTTPError", err)
		}
		if got := m.Requests("/debian/" + missing.Filename); got != 1 {
			t.Errorf("requests = %d, want 1", got)
		}
	})
	t.Run("cancelled context stops the backoff", func(t *testing.T) {
		f, _ := newFetcher(t, m, debian.WithRetries(5), debian.WithBackoff(time.Hour))
		path := m.PackagePath(p)
		m.Fail(path, 10)
		defer m.Fail(path, 0)
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		_, err := f.Download(ctx, p)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Download() = %v, want context.DeadlineExceeded", err)
		}
	})
}

func listFiles(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			out = append(out, p)
		}
		return nil
	})
	return out
}
