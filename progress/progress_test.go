package progress

import (
	"bytes"
	"errors"
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
		progress           bool
		event              project.Event
		wantOut, wantError string
	}{
		{"build start, progress shown", true, project.BuildStarted{Function: "fn", Lang: "go", Platform: "linux/amd64"}, "", "building fn (go, linux/amd64)\n"},
		{"build start, progress hidden", false, project.BuildStarted{Function: "fn", Lang: "go", Platform: "linux/amd64"}, "", ""},
		{"layer built", true, project.LayerDone{Function: "fn", Layer: layer}, "", "  fn handler binary     49.8 KB  built in 1.234s\n"},
		{"layer cached", true, project.LayerDone{Function: "fn", Layer: builder.LayerReport{Name: "watchdog", Size: 2 << 20, Cached: true}}, "", "  fn watchdog            2.0 MB  cached\n"},
		{"published", true, project.Published{Function: "fn", Output: "registry", Build: 1500 * time.Millisecond, Publish: 250 * time.Millisecond}, "", "  fn: built in 1.5s, published to registry in 250ms\n"},
		{"skip_build", true, project.Skipped{Function: "fig", Reason: "skip_build is set"}, "", "skipping fig: skip_build is set\n"},
		{"no lang warns without progress", false, project.Skipped{Function: "x", Reason: "it has no lang", Warning: true}, "", "kiln: skipping x: it has no lang\n"},
		{"deployed is a result", false, project.Deployed{Function: "fn", Image: "r/fn@sha256:1", Code: 202, URL: "http://gw/function/fn"}, "Deployed fn (r/fn@sha256:1). 202 Accepted.\nURL: http://gw/function/fn\n", ""},
		{"ready", false, project.Ready{Function: "fn", URL: "http://127.0.0.1:8080/function/fn", Took: 812 * time.Millisecond}, "", "kiln: fn ready in 812 ms: http://127.0.0.1:8080/function/fn\n"},
		{"rebuilt", false, dev.Rebuilt{Function: "fn", Layers: []builder.LayerReport{layer, {Name: "watchdog", Cached: true}}}, "", "kiln: fn: rebuilt layers: handler binary (1.234s)\n"},
		{"failed, serving", false, dev.Failed{Function: "fn", Err: errors.New("handler.go:3: syntax error"), Serving: true}, "", "kiln: handler.go:3: syntax error\nkiln: fn keeps serving the last good version\n"},
		{"failed first", false, dev.Failed{Function: "fn", Err: errors.New("boom")}, "", "kiln: boom\nkiln: fn waits for a change that fixes it\n"},
		{"pulling", false, project.Pulling{Image: "ghcr.io/me/fn:1"}, "", "kiln: pulling ghcr.io/me/fn:1\n"},
		{"live", false, dev.Live{Function: "fn", Took: 420 * time.Millisecond}, "", "kiln: fn: edit → ready in 420 ms\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			New(&stdout, &stderr, WithProgress(tc.progress)).Event(tc.event)
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
	var stdout, stderr, json bytes.Buffer
	r := New(&stdout, &stderr, WithJSON(project.JSONLines(&json)))
	r.Event(project.Skipped{Function: "fig", Reason: "skip_build is set"})
	r.Event(project.Deployed{Function: "fn", Image: "i", Code: 200, URL: "u"})
	if got, want := json.String(), `{"kind":"skipped","event":{"Function":"fig","Reason":"skip_build is set","Warning":false}}`+"\n"; got != want {
		t.Errorf("JSON lines = %q, want %q", got, want)
	}
	if got, want := stdout.String(), "Deployed fn (i). 200 OK.\nURL: u\n"; got != want {
		t.Errorf("stdout = %q, want the deploy result %q", got, want)
	}
	if stderr.Len() > 0 {
		t.Errorf("stderr = %q, want nothing beside the JSON lines", stderr.String())
	}
}
