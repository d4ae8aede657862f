package publish

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/kiln-build/kiln/test/registrytest"
)

// faultyRegistry starts a registry and a proxy in front of it; it returns
// the proxy and the registry's own HOST:PORT.
func faultyRegistry(t *testing.T, f registrytest.Faults) (*registrytest.Proxy, string) {
	t.Helper()
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	p, err := registrytest.StartProxy(host, f, 12)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p, host
}

// TestRegistryFaults pushes through a proxy that spoils 15% of the
// requests with 500s, 503s, resets and short stalls: the pushes make a
// bounded number of requests, and every tag a push reported is whole.
func TestRegistryFaults(t *testing.T) {
	ctx := context.Background()
	proxy, direct := faultyRegistry(t, registrytest.Faults{Rate: 0.15, Stall: 50 * time.Millisecond})
	pub := NewRegistry(WithKeychain(authn.NewMultiKeychain()), WithTimeout(5*time.Second))
	const pushes = 8
	ok := 0
	for i := range pushes {
		img, err := random.Image(8<<10, 3)
		if err != nil {
			t.Fatal(err)
		}
		ref, err := ParseReference(fmt.Sprintf("%s/fn:%d", proxy.Host, i), nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := pub.Publish(ctx, img, ref); err != nil {
			t.Logf("push %d failed: %v", i, err)
			continue
		}
		ok++
		// Read back past the proxy: blob by blob, checked.
		back, err := ParseReference(fmt.Sprintf("%s/fn:%d", direct, i), nil)
		if err != nil {
			t.Fatal(err)
		}
		got, err := remote.Image(back)
		if err != nil {
			t.Fatalf("pulling pushed %s: %v", ref, err)
		}
		if err := validate.Image(got); err != nil {
			t.Errorf("validate.Image(%s) = %v", ref, err)
		}
		if gd, wd := mustDigest(t, got), mustDigest(t, img); gd != wd {
			t.Errorf("%s = %s, want %s", ref, gd, wd)
		}
	}
	t.Logf("%d of %d pushes went through; %d faults in %d requests", ok, pushes, proxy.Injected(), proxy.Requests())
	if ok < pushes/2 {
		t.Errorf("%d of %d pushes went through, want most", ok, pushes)
	}
	if proxy.Injected() == 0 {
		t.Error("the proxy injected no fault")
	}
	// A clean push of 3 layers takes about 15 requests; each operation
	// is tried at most 4 times.
	if n := proxy.Requests(); n > pushes*15*4 {
		t.Errorf("%d pushes made %d requests, want a bounded number", pushes, n)
	}
}

// TestRegistrySilent pushes to registries that never answer: the push
// fails with a *SilentError within about the timeout, tried once.
func TestRegistrySilent(t *testing.T) {
	const timeout = 400 * time.Millisecond
	// Accepts connections, reads nothing, answers nothing.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
		}
	}()
	silentProxy, _ := faultyRegistry(t, registrytest.Faults{Silent: true})
	stalling, _ := faultyRegistry(t, registrytest.Faults{Rate: 1, Kinds: []registrytest.Fault{registrytest.Stall}, Stall: time.Minute})
	for _, host := range []string{l.Addr().String(), silentProxy.Host, stalling.Host} {
		t.Run(host, func(t *testing.T) {
			img, _ := random.Image(1024, 2)
			ref, err := ParseReference(host+"/fn:1", nil)
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			_, err = NewRegistry(WithKeychain(authn.NewMultiKeychain()), WithTimeout(timeout)).Publish(context.Background(), img, ref)
			took := time.Since(start)
			var se *SilentError
			if !errors.As(err, &se) || se.Host != host {
				t.Fatalf("Publish() = %v, want a *SilentError for %s", err, host)
			}
			if strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), "sent nothing for "+timeout.String()) {
				t.Errorf("Publish() = %q, want one line saying the registry sent nothing", err)
			}
			if took > 3*timeout {
				t.Errorf("Publish() took %s, want about the timeout %s", took, timeout)
			}
		})
	}
}

// TestRegistryRetriesLogged answers every request 503: the push tries each
// operation retries+1 times, logs each retry with its cause and wait, and
// fails.
func TestRegistryRetriesLogged(t *testing.T) {
	proxy, _ := faultyRegistry(t, registrytest.Faults{Rate: 1, Kinds: []registrytest.Fault{registrytest.Error503}})
	var logs bytes.Buffer
	old := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&logs, nil)))
	t.Cleanup(func() { slog.SetDefault(old) })
	img, _ := random.Image(1024, 1)
	ref, err := ParseReference(proxy.Host+"/fn:1", nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = NewRegistry(WithKeychain(authn.NewMultiKeychain()), WithRetries(2), WithTimeout(time.Second)).Publish(context.Background(), img, ref)
	if err == nil {
		t.Fatal("Publish() to a registry that answers 503 = nil error")
	}
	out := logs.String()
	for _, want := range []string{"trying again", "503 Service Unavailable", "in=200ms", "in=600ms", `retry="2 of 2"`} {
		if !strings.Contains(out, want) {
			t.Errorf("log = %s\nwant it to contain %q", out, want)
		}
	}
	if strings.Contains(out, "in=1.8s") {
		t.Errorf("log = %s\nwant no third retry", out)
	}
}
