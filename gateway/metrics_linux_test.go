package gateway

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/kiln-build/kiln/deploy"
)

// TestInstanceMemory: the memory and CPU of a real process tree, which
// the runner reports through Instance.Started, reach /metrics and
// Telemetry.
func TestInstanceMemory(t *testing.T) {
	var root atomic.Int64
	run := func(ctx context.Context, in Instance) error {
		// Two processes: the shell, busy, and its sleep.
		cmd := exec.Command("sh", "-c", "sleep 60 & while :; do :; done")
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Start(); err != nil {
			return err
		}
		defer cmd.Wait()
		defer syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		root.Store(int64(cmd.Process.Pid))
		in.Started(cmd.Process.Pid)
		srv := &http.Server{Handler: http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})}
		_ = in.Listener.SetDeadline(time.Time{})
		go srv.Serve(&runListener{TCPListener: in.Listener})
		<-ctx.Done()
		return srv.Shutdown(context.Background())
	}
	g := New(run, WithHealthTimeout(5*time.Second))
	defer g.Close()
	srv := httptest.NewServer(g.Handler())
	defer srv.Close()
	if err := g.Deploy(context.Background(), deploy.Deployment{Service: "mem", Image: "mem:1"}, Upsert); err != nil {
		t.Fatal(err)
	}
	// The shell has started its sleep once the tree holds two processes.
	waitUntil(t, "the sleep started", func() bool {
		_, children := readProcs()
		return len(children[int(root.Load())]) == 1
	})
	fams := scrape(t, srv.URL+"/metrics")
	procs, children := readProcs()
	pid := int(root.Load())
	alone := procs[pid].rss
	both := alone + procs[children[pid][0]].rss
	rss := value(fams, MetricMemory, "function_name", "mem.openfaas-fn")
	if rss <= float64(alone) || rss > 2*float64(both) {
		t.Errorf("%s = %v, want the two processes' sum, about %d (the shell alone: %d)", MetricMemory, rss, both, alone)
	}
	if cpu := value(fams, MetricCPU, "function_name", "mem.openfaas-fn"); cpu < 0 {
		t.Errorf("%s absent", MetricCPU)
	}
	if r := sample(fams, MetricMemory, "function_name", "mem.openfaas-fn"); r == nil || len(r.GetLabel()) != 2 || r.GetLabel()[1].GetName() != "replica" || !strings.HasPrefix(r.GetLabel()[1].GetValue(), "mem-") {
		t.Errorf("%s labels = %v, want the replica's name", MetricMemory, r.GetLabel())
	}
	// CPU percent is measured over a second at least: the busy shell
	// uses a good part of a core, less on a loaded machine (18 % seen
	// with two cores busy elsewhere).
	time.Sleep(1100 * time.Millisecond)
	scrape(t, srv.URL+"/metrics")
	tel := g.Telemetry()
	if len(tel) != 1 || len(tel[0].Instances) != 1 {
		t.Fatalf("Telemetry() = %+v, want one instance", tel)
	}
	if in := tel[0].Instances[0]; in.RSSBytes == 0 || in.Started == 0 || in.CPUSeconds <= 0 || in.CPUPercent < 5 || in.CPUPercent > 250 {
		t.Errorf("Telemetry()'s instance = %+v, want its memory, and CPU seconds at 5%% of a core or more", in)
	}
}
