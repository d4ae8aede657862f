package debian_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kiln-build/kiln/runtime-images/debian"
)

// index builds an index from "name version [field: value]..." stanzas.
func index(t *testing.T, suite string, stanzas ...string) *debian.Index {
	t.Helper()
	var b strings.Builder
	for _, s := range stanzas {
		fields := strings.Split(s, ";")
		name, ver, _ := strings.Cut(strings.TrimSpace(fields[0]), " ")
		fmt.Fprintf(&b, "Package: %s\nVersion: %s\nArchitecture: amd64\n", name, ver)
		for _, f := range fields[1:] {
			fmt.Fprintf(&b, "%s\n", strings.TrimSpace(f))
		}
		fmt.Fprintf(&b, "Filename: pool/main/%s/%s/%s_%s_amd64.deb\nSize: 1\nSHA256: %s\n\n", name[:1], name, name, ver, strings.Repeat("a", 64))
	}
	ix, err := debian.ParseIndex(strings.NewReader(b.String()), suite, "amd64")
	if err != nil {
		t.Fatalf("ParseIndex() = %v", err)
	}
	return ix
}

func TestResolve(t *testing.T) {
	base := index(t, "bookworm",
		"libc6 2.36-9; Depends: libgcc-s1; Pre-Depends: debconf (>= 0.5) | debconf-2.0",
		"libgcc-s1 12.2.0-14; Depends: gcc-12-base (= 12.2.0-14), libc6 (>= 2.35)",
		"gcc-12-base 12.2.0-14",
		"debconf 1.5.82",
		"cdebconf 0.270; Provides: debconf-2.0",
		"zlib1g 1:1.2.13.dfsg-1; Depends: libc6 (>= 2.14)",
		"openjdk-17-jre-headless 17.0.9; Depends: java-common, libjpeg | libjpeg-turbo, ca-certificates-java (>= 30000000) | java-certs (>= 2)",
		"java-common 0.74",
		"libjpeg-turbo 2.1.5",
		"ca-certificates-java 20230710",
		"certs-old 1; Provides: java-certs",
		"certs-new 1; Provides: java-certs (= 3)",
		"tool 1; Depends: debconf-2.0",
		"needs-missing 1; Depends: libnothere (>= 2)",
		"needs-newer 1; Depends: gcc-12-base (>= 13)",
	)
	update := index(t, "bookworm-security", "libc6 2.36-9+deb12u4; Depends: libgcc-s1")
	merged, err := debian.Merge(base, update)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		requests []debian.Request
		exclude  []string
		want     []string // "name version suite"
		wantErr  string
	}{{
		name:     "no closure",
		requests: []debian.Request{{Name: "zlib1g"}},
		want:     []string{"zlib1g 1:1.2.13.dfsg-1 bookworm"},
	}, {
		name:     "closure with the newest libc6",
		requests: []debian.Request{{Name: "zlib1g", Depends: true}},
		exclude:  []string{"debconf"},
		want: []string{
			"gcc-12-base 12.2.0-14 bookworm",
			"libc6 2.36-9+deb12u4 bookworm-security",
			"libgcc-s1 12.2.0-14 bookworm",
			"zlib1g 1:1.2.13.dfsg-1 bookworm",
		},
	}, {
		name:     "pre-depends followed, first alternative taken",
		requests: []debian.Request{{Name: "libc6", Depends: true}},
		want: []string{
			"gcc-12-base 12.2.0-14 bookworm",
			"libc6 2.36-9+deb12u4 bookworm-security",
			"libgcc-s1 12.2.0-14 bookworm",
		},
	}, {
		name:     "alternatives and versioned virtual packages",
		requests: []debian.Request{{Name: "libjpeg-turbo"}, {Name: "openjdk-17-jre-headless", Depends: true}},
		want: []string{
			"certs-new 1 bookworm",
			"java-common 0.74 bookworm",
			"libjpeg-turbo 2.1.5 bookworm",
			"openjdk-17-jre-headless 17.0.9 bookworm",
		},
	}, {
		name:     "virtual package from its provider",
		requests: []debian.Request{{Name: "tool", Depends: true}},
		want:     []string{"cdebconf 0.270 bookworm", "tool 1 bookworm"},
	}, {
		name:     "missing package",
		requests: []debian.Request{{Name: "nothere"}},
		wantErr:  "package nothere is not in bookworm, bookworm-security for amd64",
	}, {
		name:     "missing dependency",
		requests: []debian.Request{{Name: "needs-missing", Depends: true}},
		wantErr:  "needs-missing depends on libnothere (>= 2)",
	}, {
		name:     "dependency too old",
		requests: []debian.Request{{Name: "needs-newer", Depends: true}},
		wantErr:  "needs-newer depends on gcc-12-base (>= 13)",
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := merged.Resolve(tc.requests, tc.exclude)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Resolve() = %v, want an error containing %q", err, tc.wantErr)
				}
				var nf *debian.NotFoundError
				var ue *debian.UnsatisfiableError
				if !errors.As(err, &nf) && !errors.As(err, &ue) {
					t.Errorf("Resolve() = %T, want a typed error", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Resolve() = %v", err)
			}
			var names []string
			for _, p := range got {
				names = append(names, p.Name+" "+p.Version+" "+p.Suite)
			}
			if diff := cmp.Diff(tc.want, names); diff != "" {
				t.Errorf("Resolve() (-want +got):\n%s", diff)
			}
		})
	}
}
