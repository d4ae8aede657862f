package dockerfile

import (
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

func TestParsePlatform(t *testing.T) {
	def := v1.Platform{OS: "linux", Architecture: "arm", Variant: "v7"}
	tests := []struct {
		in      string
		want    v1.Platform
		wantErr bool
	}{
		{in: "linux/amd64", want: v1.Platform{OS: "linux", Architecture: "amd64"}},
		{in: "linux/arm64/v8", want: v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}},
		{in: "linux", want: def},
		{in: "linux/", wantErr: true},
		{in: "/amd64", wantErr: true},
		{in: "linux/arm/v7/extra", wantErr: true},
	}
	for _, tc := range tests {
		got, err := parsePlatform(tc.in, def)
		if (err != nil) != tc.wantErr || (!tc.wantErr && got.String() != tc.want.String()) {
			t.Errorf("parsePlatform(%q) = %v, %v; want %v, error %v", tc.in, got, err, tc.want, tc.wantErr)
		}
	}
}

func TestValidSignal(t *testing.T) {
	for s, want := range map[string]bool{
		"SIGTERM": true, "term": true, "9": true, "SIGRTMIN+3": true, "RTMAX": true,
		"SIGFOO": false, "0": false, "65": false, "RTMIN+31": false, "": false,
	} {
		if got := validSignal(s); got != want {
			t.Errorf("validSignal(%q) = %v, want %v", s, got, want)
		}
	}
}
