package dashboards

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/promql/parser"
	"gopkg.in/yaml.v3"

	"github.com/kiln-build/kiln/deploy"
	"github.com/kiln-build/kiln/gateway"
)

// TestExpressionsNameScrapedMetrics: every PromQL expression of the
// dashboard and the rules parses, and names only series that a real
// kiln gateway and a real watchdog expose (or that the rules record); and
// the dashboard shows every kiln_* series they expose.
func TestExpressionsNameScrapedMetrics(t *testing.T) {
	exposed := map[string]bool{}
	var kilnNames []string
	for _, fams := range []map[string]string{scrapeGateway(t), scrapeWatchdog(t)} {
		for name, kind := range fams {
			exposed[name] = true
			if kind == "HISTOGRAM" {
				for _, s := range []string{"_bucket", "_sum", "_count"} {
					exposed[name+s] = true
				}
			}
			if strings.HasPrefix(name, "kiln_") {
				kilnNames = append(kilnNames, name)
			}
		}
	}

	var dash bytes.Buffer
	if err := Write(&dash, Grafana); err != nil {
		t.Fatalf("Write(grafana) = %v", err)
	}
	var d struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
		Templating struct {
			List []struct {
				Name       string
				Definition string
			}
		}
	}
	if err := json.Unmarshal(dash.Bytes(), &d); err != nil {
		t.Fatalf("the dashboard is not JSON: %v", err)
	}
	var rulesOut bytes.Buffer
	if err := Write(&rulesOut, PrometheusRules, WithSLO(0.999)); err != nil {
		t.Fatalf("Write(prometheus-rules) = %v", err)
	}
	var rf ruleFile
	if err := yaml.Unmarshal(rulesOut.Bytes(), &rf); err != nil {
		t.Fatalf("the rules are not YAML: %v", err)
	}

	type expr struct{ where, text string }
	var exprs []expr
	dashNames := map[string]bool{}
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			exprs = append(exprs, expr{"panel " + p.Title, tg.Expr})
		}
	}
	// The variable's label_values(metric, label) is Grafana's, not PromQL.
	labelValues := regexp.MustCompile(`^label_values\(([a-z_:]+), function_name\)$`)
	for _, v := range d.Templating.List {
		if v.Name != "function_name" {
			continue
		}
		m := labelValues.FindStringSubmatch(v.Definition)
		if m == nil || !exposed[m[1]] {
			t.Errorf("variable function_name = %q, want label_values of an exposed series", v.Definition)
		}
	}
	recorded := map[string]bool{}
	var alerts int
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			if r.Record != "" {
				recorded[r.Record] = true
				exprs = append(exprs, expr{"record " + r.Record, r.Expr})
			} else {
				alerts++
				exprs = append(exprs, expr{"alert " + r.Alert, r.Expr})
			}
			if r.For != "" {
				if _, err := model.ParseDuration(r.For); err != nil {
					t.Errorf("rule %s%s: for %q: %v", r.Record, r.Alert, r.For, err)
				}
			}
		}
	}
	if len(exprs) < 25 || alerts < 6 {
		t.Fatalf("%d expressions, %d alerts: want the dashboard's and the rules'", len(exprs), alerts)
	}
	// Grafana replaces its variables before it sends a query.
	grafanaVars := strings.NewReplacer("$__rate_interval", "1m", "$function_name", ".*")
	for _, e := range exprs {
		t.Run(e.where, func(t *testing.T) {
			parsed, err := parser.NewParser(parser.Options{}).ParseExpr(grafanaVars.Replace(e.text))
			if err != nil {
				t.Fatalf("ParseExpr(%q) = %v", e.text, err)
			}
			parser.Inspect(parsed, func(n parser.Node, _ []parser.Node) error {
				vs, ok := n.(*parser.VectorSelector)
				if !ok {
					return nil
				}
				if strings.HasPrefix(e.where, "panel") {
					dashNames[vs.Name] = true
				}
				if !exposed[vs.Name] && !(recorded[vs.Name] && !strings.HasPrefix(e.where, "panel")) {
					t.Errorf("%q names %s, which no scrape exposes", e.text, vs.Name)
				}
				return nil
			})
		})
	}
	for _, name := range kilnNames {
		if !dashNames[name] && !dashNames[name+"_bucket"] && !dashNames[name+"_count"] {
			t.Errorf("the dashboard does not show %s", name)
		}
	}
	if !strings.Contains(rulesOut.String(), "0.0144") || !strings.Contains(rulesOut.String(), "slo: 99.9%") {
		t.Errorf("rules with SLO 99.9%% lack the 14.4x burn threshold 0.0144 or the SLO label:\n%s", rulesOut.String())
	}
}

func TestWriteErrors(t *testing.T) {
	tests := []struct {
		name   string
		format Format
		opts   []Option
		want   string
	}{
		{"unknown format", "json", nil, `format "json": want "grafana" or "prometheus-rules"`},
		{"SLO of 1", Grafana, []Option{WithSLO(1)}, "SLO 1: want a share between 0 and 1"},
		{"SLO of 0", PrometheusRules, []Option{WithSLO(0)}, "SLO 0: want a share between 0 and 1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := Write(io.Discard, tc.format, tc.opts...); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Write() = %v, want %q", err, tc.want)
			}
		})
	}
}

// scrapeGateway runs a kiln gateway whose function is a real HTTP server
// beside a real process (for memory and CPU), makes calls of every kind
// (one waits for a max_inflight slot), and returns its families' types
// by name.
func scrapeGateway(t *testing.T) map[string]string {
	release := make(chan struct{})
	run := func(ctx context.Context, in gateway.Instance) error {
		cmd := exec.CommandContext(ctx, "sleep", "60")
		if err := cmd.Start(); err != nil {
			return err
		}
		defer cmd.Wait()
		in.Started(cmd.Process.Pid)
		mux := http.NewServeMux()
		mux.HandleFunc("/hold", func(http.ResponseWriter, *http.Request) { <-release })
		mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { io.Copy(w, r.Body) })
		srv := &http.Server{Handler: mux}
		go srv.Serve(in.Listener)
		<-ctx.Done()
		return srv.Close()
	}
	g := gateway.New(run, gateway.WithHealthTimeout(5*time.Second))
	t.Cleanup(g.Close)
	srv := httptest.NewServer(g.Handler())
	t.Cleanup(srv.Close)
	if err := g.Deploy(context.Background(), deploy.Deployment{Service: "fn", Image: "fn:1", EnvVars: map[string]string{"max_inflight": "1"}}, gateway.Upsert); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			if resp, err := http.Get(srv.URL + "/function/fn/hold"); err == nil {
				resp.Body.Close()
			}
		})
	}
	deadline := time.Now().Add(5 * time.Second)
	for g.Telemetry()[0].Queued != 1 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	close(release)
	wg.Wait()
	resp, err := http.Post(srv.URL+"/function/fn", "text/plain", strings.NewReader("hello"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return scrape(t, srv.URL+"/metrics")
}

// scrapeWatchdog builds and runs kiln's watchdog in front of cat, calls
// it, and returns its families' types by name.
func scrapeWatchdog(t *testing.T) map[string]string {
	bin := filepath.Join(t.TempDir(), "watchdog")
	build := exec.Command("go", "build", "-o", bin, "github.com/kiln-build/kiln/cmd/watchdog")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the watchdog: %v\n%s", err, out)
	}
	port, metricsPort := freePort(t), freePort(t)
	cmd := exec.Command(bin)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "TMPDIR=" + t.TempDir(), "fprocess=cat", "max_inflight=2",
		"OPENFAAS_NAME=fn", "OPENFAAS_NAMESPACE=dev", fmt.Sprintf("port=%d", port), fmt.Sprintf("metrics_port=%d", metricsPort)}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(base + "/_/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the watchdog is not healthy within 10 s: %v\n%s", err, out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	resp, err := http.Post(base+"/", "text/plain", strings.NewReader("hello"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return scrape(t, fmt.Sprintf("http://127.0.0.1:%d/metrics", metricsPort))
}

func scrape(t *testing.T, url string) map[string]string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parsing %s: %v", url, err)
	}
	out := map[string]string{}
	for name, f := range fams {
		out[name] = f.GetType().String()
	}
	if len(out) == 0 {
		t.Fatalf("%s: no series", url)
	}
	return out
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
