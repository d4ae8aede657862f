package progress

import (
	"bytes"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/kiln-build/kiln/builder"
	"github.com/kiln-build/kiln/dev"
	"github.com/kiln-build/kiln/project"
)

func TestText(t *testing.T) {
	layer := builder.LayerReport{Name: "handler binary", Size: 51000, Duration: 1234 * time.Millisecond}
	tests := []struct {
		name               string
		mode               Mode
		event              project.Event
		wantOut, wantError string
	}{
		{"build start shows no line", Plain, project.BuildStarted{Function: "fn", Lang: "go", Platform: "linux/amd64"}, "", ""},
		{"step start shows no line", Plain, project.StepStarted{Function: "fn", Step: "compile", ID: 1}, "", ""},
		{"step progress shows no line", Plain, project.StepProgress{Function: "fn", Step: "push", ID: 1, Bytes: 100}, "", ""},
		{"compile", Plain, project.StepDone{Function: "fn", Step: "compile", Took: 1234 * time.Millisecond}, "", "fn: compile in 1.2s\n"},
		{"layer built", Plain, project.StepDone{Function: "fn", Step: "layer handler binary", Bytes: 51000, Took: 1234 * time.Millisecond}, "", "fn: layer handler binary 49.8 KB in 1.2s\n"},
		{"layer cached", Plain, project.StepDone{Function: "fn", Step: "layer watchdog", Bytes: 2 << 20, Cached: true, Took: time.Millisecond}, "", "fn: layer watchdog 2.0 MB (cached)\n"},
		{"layer with nothing", Plain, project.StepDone{Function: "fn", Step: "layer static files", Empty: true}, "", ""},
		{"download", Plain, project.StepDone{Function: "fn", Step: "download tzdata 2024a-0+deb12u1", Bytes: 256 << 10, Took: 120 * time.Millisecond}, "", "fn: download tzdata 2024a-0+deb12u1 256.0 KB in 120ms\n"},
		{"push", Plain, project.StepDone{Function: "fn", Step: "push", Count: 2, Unit: "layer", Bytes: 3 << 20, Took: 800 * time.Millisecond}, "", "fn: push 2 layers, 3.0 MB in 800ms\n"},
		{"push of nothing new", Plain, project.StepDone{Function: "fn", Step: "push", Unit: "layer", Took: 4 * time.Millisecond}, "", "fn: push 0 layers in 4ms\n"},
		{"one layer stored", Plain, project.StepDone{Function: "fn", Step: "store", Count: 1, Unit: "layer", Bytes: 10, Took: 4 * time.Millisecond}, "", "fn: store 1 layer, 10 B in 4ms\n"},
		{"failed step shows no line", Plain, project.StepDone{Function: "fn", Step: "compile", Err: "exit status 1"}, "", ""},
		{"step hidden", Quiet, project.StepDone{Function: "fn", Step: "compile", Took: time.Second}, "", ""},
		{"layer event shows no line", Plain, project.LayerDone{Function: "fn", Layer: layer}, "", ""},
		{"published", Plain, project.Published{Function: "fn", Output: "registry", Build: 1500 * time.Millisecond, Publish: 250 * time.Millisecond}, "", "fn: built in 1.5s, published to registry in 250ms\n"},
		{"skip_build", Plain, project.Skipped{Function: "fig", Reason: "skip_build is set"}, "", "skipping fig: skip_build is set\n"},
		{"no lang warns when quiet", Quiet, project.Skipped{Function: "x", Reason: "it has no lang", Warning: true}, "", "kiln: skipping x: it has no lang\n"},
		{"deployed is a result", Quiet, project.Deployed{Function: "fn", Image: "r/fn@sha256:1", Code: 202, URL: "http://gw/function/fn"}, "Deployed fn (r/fn@sha256:1). 202 Accepted.\nURL: http://gw/function/fn\n", ""},
		{"ready", Quiet, project.Ready{Function: "fn", URL: "http://127.0.0.1:8080/function/fn", Took: 812 * time.Millisecond}, "", "kiln: fn ready in 812 ms: http://127.0.0.1:8080/function/fn\n"},
		{"rebuilt", Quiet, dev.Rebuilt{Function: "fn", Layers: []builder.LayerReport{layer, {Name: "watchdog", Cached: true}}}, "", "kiln: fn: rebuilt layers: handler binary (1.234s)\n"},
		{"failed, serving", Quiet, dev.Failed{Function: "fn", Err: errors.New("handler.go:3: syntax error"), Serving: true}, "", "kiln: handler.go:3: syntax error\nkiln: fn keeps serving the last good version\n"},
		{"failed first", Quiet, dev.Failed{Function: "fn", Err: errors.New("boom")}, "", "kiln: boom\nkiln: fn waits for a change that fixes it\n"},
		{"pulling", Quiet, project.Pulling{Image: "ghcr.io/me/fn:1"}, "", "kiln: pulling ghcr.io/me/fn:1\n"},
		{"live", Quiet, dev.Live{Function: "fn", Took: 420 * time.Millisecond}, "", "kiln: fn: edit → ready in 420 ms\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			New(&stdout, &stderr, tc.mode).Event(tc.event)
			if diff := cmp.Diff(tc.wantOut, stdout.String()); diff != "" {
				t.Errorf("stdout (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantError, stderr.String()); diff != "" {
				t.Errorf("stderr (-want +got):\n%s", diff)
			}
		})
	}
}

func TestTextJSON(t *testing.T) {
	var stdout, stderr bytes.Buffer
	r := New(&stdout, &stderr, JSON)
	r.Event(project.Skipped{Function: "fig", Reason: "skip_build is set"})
	r.Event(project.StepDone{Function: "fn", Step: "push", ID: 3, Took: time.Millisecond, Bytes: 10, Count: 1, Unit: "layer"})
	r.Event(project.StepDone{Function: "fn", Step: "compile", ID: 4, Err: "exit status 2"})
	r.Event(project.Deployed{Function: "fn", Image: "i", Code: 200, URL: "u"})
	want := `{"kind":"skipped","event":{"Function":"fig","Reason":"skip_build is set","Warning":false}}
{"kind":"step-done","event":{"Function":"fn","Step":"push","ID":3,"Took":1000000,"Bytes":10,"Count":1,"Unit":"layer","Cached":false,"Empty":false}}
{"kind":"step-done","event":{"Function":"fn","Step":"compile","ID":4,"Took":0,"Bytes":0,"Cached":false,"Empty":false,"Err":"exit status 2"}}
`
	if diff := cmp.Diff(want, stderr.String()); diff != "" {
		t.Errorf("JSON lines (-want +got):\n%s", diff)
	}
	if got, want := stdout.String(), "Deployed fn (i). 200 OK.\nURL: u\n"; got != want {
		t.Errorf("stdout = %q, want the deploy result %q", got, want)
	}
}

// TestLive feeds events to a live display on a fake terminal, drawn on
// every event, and checks each write: the cursor goes up over the lines
// drawn before, clears them, prints the finished steps and the running
// ones again.
func TestLive(t *testing.T) {
	const up1, up2 = "\r\x1b[1A\x1b[J", "\r\x1b[2A\x1b[J"
	tests := []struct {
		name   string
		width  int
		events []project.Event
		// writes are what each event writes to the terminal.
		writes []string
	}{
		{
			name:  "a step runs and finishes",
			width: 80,
			events: []project.Event{
				project.StepStarted{Function: "fn", Step: "compile", ID: 1},
				project.StepDone{Function: "fn", Step: "compile", ID: 1, Took: 1200 * time.Millisecond},
			},
			writes: []string{
				"fn: compile (0s)\n",
				up1 + "fn: compile in 1.2s\n",
			},
		},
		{
			name:  "two steps, bytes, one cached",
			width: 80,
			events: []project.Event{
				project.StepStarted{Function: "fn", Step: "download libc6", ID: 1},
				project.StepStarted{Function: "fn", Step: "layer watchdog", ID: 2},
				project.StepProgress{Function: "fn", Step: "download libc6", ID: 1, Bytes: 1 << 20, Total: 3 << 20},
				project.StepDone{Function: "fn", Step: "layer watchdog", ID: 2, Bytes: 2 << 20, Cached: true},
				project.StepDone{Function: "fn", Step: "download libc6", ID: 1, Bytes: 3 << 20, Took: 300 * time.Millisecond},
			},
			writes: []string{
				"fn: download libc6 (0s)\n",
				up1 + "fn: download libc6 (0s)\nfn: layer watchdog (0s)\n",
				up2 + "fn: download libc6 1.0 MB of 3.0 MB (0s)\nfn: layer watchdog (0s)\n",
				up2 + "fn: layer watchdog 2.0 MB (cached)\nfn: download libc6 1.0 MB of 3.0 MB (0s)\n",
				up1 + "fn: download libc6 3.0 MB in 300ms\n",
			},
		},
		{
			name:  "a failed step leaves the screen clean",
			width: 80,
			events: []project.Event{
				project.StepStarted{Function: "fn", Step: "compile", ID: 1},
				project.StepDone{Function: "fn", Step: "compile", ID: 1, Err: "exit status 1"},
			},
			writes: []string{"fn: compile (0s)\n", up1},
		},
		{
			name:  "a line wider than the terminal is cut",
			width: 20,
			events: []project.Event{
				project.StepStarted{Function: "fn", Step: "layer python: libssl3 3.0.15", ID: 1},
				project.StepDone{Function: "fn", Step: "layer python: libssl3 3.0.15", ID: 1, Cached: true, Bytes: 10},
			},
			writes: []string{
				"fn: layer python: l\n",
				up1 + "fn: layer python: libssl3 3.0.15 10 B (cached)\n",
			},
		},
		{
			name:  "a warning goes above the display",
			width: 80,
			events: []project.Event{
				project.StepStarted{Function: "fn", Step: "push", ID: 1},
				project.Warning{Msg: "--tag has no effect"},
				project.Published{Function: "fn", Output: "registry", Build: time.Second, Publish: time.Second},
			},
			writes: []string{
				"fn: push (0s)\n",
				up1 + "kiln: --tag has no effect\nfn: push (0s)\n",
				up1 + "fn: built in 1s, published to registry in 1s\nfn: push (0s)\n",
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var term recorder
			r := New(&bytes.Buffer{}, &term, Live)
			r.live.width, r.live.every, r.live.tick = tc.width, 0, 0
			for _, e := range tc.events {
				r.Event(e)
				term.end()
			}
			if diff := cmp.Diff(tc.writes, term.writes); diff != "" {
				t.Errorf("terminal writes (-want +got):\n%s", diff)
			}
		})
	}
}

// recorder is a fake terminal that keeps what each event wrote.
type recorder struct {
	writes []string
	cur    strings.Builder
}

func (r *recorder) Write(p []byte) (int, error) { return r.cur.Write(p) }

func (r *recorder) end() {
	if r.cur.Len() > 0 {
		r.writes = append(r.writes, r.cur.String())
		r.cur.Reset()
	}
}

// TestLiveMany shows at most maxLive running steps and counts the others.
func TestLiveMany(t *testing.T) {
	var term bytes.Buffer
	r := New(&bytes.Buffer{}, &term, Live)
	r.live.every, r.live.tick = 0, 0
	for i := range maxLive + 3 {
		r.Event(project.StepStarted{Function: "fn", Step: "layer", ID: uint64(i)})
	}
	term.Reset()
	r.Event(project.StepProgress{Function: "fn", Step: "layer", ID: 0, Bytes: 1})
	got := term.String()
	if n := strings.Count(got, "fn: layer"); n != maxLive {
		t.Errorf("display shows %d steps, want %d:\n%s", n, maxLive, got)
	}
	if !strings.HasSuffix(got, "and 3 more steps\n") || !strings.HasPrefix(got, "\r\x1b[9A") {
		t.Errorf("display = %q, want it to move up 9 lines and end with the 3 more", got)
	}
}

// TestLiveRateLimit checks that progress redraws at most once per every,
// and that the last state is drawn after it.
func TestLiveRateLimit(t *testing.T) {
	var term syncBuffer
	r := New(&bytes.Buffer{}, &term, Live)
	r.live.every, r.live.tick = 200*time.Millisecond, 0
	r.Event(project.StepStarted{Function: "fn", Step: "push", ID: 1})
	for i := range 100 {
		r.Event(project.StepProgress{Function: "fn", Step: "push", ID: 1, Bytes: int64(i+1) << 10})
	}
	if n := strings.Count(term.String(), "fn: push"); n != 1 {
		t.Errorf("display drawn %d times within 200ms, want once:\n%q", n, term.String())
	}
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(term.String(), "fn: push 100.0 KB (0s)") {
		if time.Now().After(deadline) {
			t.Fatalf("the last progress was not drawn:\n%q", term.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	r.Event(project.StepDone{Function: "fn", Step: "push", ID: 1, Bytes: 100 << 10, Took: time.Second})
	if got := term.String(); !strings.HasSuffix(got, "\r\x1b[1A\x1b[Jfn: push 100.0 KB in 1s\n") {
		t.Errorf("terminal ends with %q, want the finished push and no display", got)
	}
}

// syncBuffer is a buffer the display's timer writes to while the test
// reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestChoose(t *testing.T) {
	notTerminal, err := os.CreateTemp(t.TempDir(), "stderr")
	if err != nil {
		t.Fatal(err)
	}
	defer notTerminal.Close()
	tests := []struct {
		flag                   string
		verbose, quiet, builds bool
		want                   Mode
	}{
		{flag: "auto", builds: true, want: Plain},
		{flag: "auto", want: Quiet},
		{flag: "auto", builds: true, quiet: true, want: Quiet},
		{flag: "auto", verbose: true, quiet: true, want: Plain},
		{flag: "plain", quiet: true, want: Plain},
		{flag: "json", verbose: true, want: JSON},
	}
	for _, tc := range tests {
		if got := Choose(tc.flag, notTerminal, tc.verbose, tc.quiet, tc.builds); got != tc.want {
			t.Errorf("Choose(%q, a file, verbose %v, quiet %v, builds %v) = %v, want %v", tc.flag, tc.verbose, tc.quiet, tc.builds, got, tc.want)
		}
	}
}
