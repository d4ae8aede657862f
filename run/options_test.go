package run

import (
	"net"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestNewOptions(t *testing.T) {
	tests := []struct {
		name    string
		opts    []Option
		wantEnv []string
		wantErr bool
	}{
		{name: "cache dir only", opts: []Option{WithCacheDir("/c")}},
		{name: "env in order", opts: []Option{WithCacheDir("/c"), WithEnv([]string{"port=1", "A=b"}), WithEnv([]string{"port=2"})}, wantEnv: []string{"port=1", "A=b", "port=2"}},
		{name: "no cache dir", opts: []Option{WithEnv([]string{"A=b"})}, wantErr: true},
		{name: "publish without a listener", opts: []Option{WithCacheDir("/c"), WithPublish(nil, 8080)}, wantErr: true},
		{name: "publish port out of range", opts: []Option{WithCacheDir("/c"), WithPublish(&net.TCPListener{}, 70000)}, wantErr: true},
		{name: "host names", opts: []Option{WithCacheDir("/c"), WithHostNames("gateway", "gateway.openfaas")}},
		{name: "host name with a space", opts: []Option{WithCacheDir("/c"), WithHostNames("a b")}, wantErr: true},
		{name: "host name with a newline", opts: []Option{WithCacheDir("/c"), WithHostNames("a\n1.2.3.4 evil")}, wantErr: true},
		{name: "no grace period", opts: []Option{WithCacheDir("/c"), WithGracePeriod(0)}, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := newOptions(tc.opts)
			if (err != nil) != tc.wantErr {
				t.Fatalf("newOptions() = %v, want error %v", err, tc.wantErr)
			}
			if err == nil && !cmp.Equal(got.env, tc.wantEnv) {
				t.Errorf("newOptions() env = %v, want %v", got.env, tc.wantEnv)
			}
		})
	}
}
