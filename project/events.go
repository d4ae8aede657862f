package project

import (
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/kiln-build/kiln/builder"
	"github.com/kiln-build/kiln/internal/step"
)

// Event is a step of the workflow, for a progress display.
type Event interface {
	// EventKind names the event in machine-readable output.
	EventKind() string
}

// Progress receives events, from several goroutines at once.
type Progress func(Event)

// BuildStarted: a function's build begins.
type BuildStarted struct {
	Function, Lang, Platform string
}

// LayerDone: one layer of a function's image is ready.
type LayerDone struct {
	Function string
	Layer    builder.LayerReport
}

// StepStarted: a step of a function's build began: a layer, a compile, a
// download, a publish. ID tells apart steps of one name.
type StepStarted struct {
	Function, Step string
	ID             uint64
}

// StepProgress: a running step moved Bytes so far, of Total when known
// (else 0). A step sends it at most every step.ProgressEvery.
type StepProgress struct {
	Function, Step string
	ID             uint64
	Bytes, Total   int64
}

// StepDone: a step of a function's build ended. Bytes are those it moved
// (downloaded, written, uploaded; a layer's compressed size); Count is how
// many Unit it handled ("layer" for a publish), Unit "" when it counts
// nothing. Cached: it came from the cache; Empty: it had nothing to do.
// Err is why it failed, "" when it did not.
type StepDone struct {
	Function, Step string
	ID             uint64
	Took           time.Duration
	Bytes          int64
	Count          int    `json:",omitempty"`
	Unit           string `json:",omitempty"`
	Cached, Empty  bool
	Err            string `json:",omitempty"`
}

// stepEvent turns a step's event into the function's.
func stepEvent(function string, e step.Event) Event {
	switch e.State {
	case step.Started:
		return StepStarted{Function: function, Step: e.Step, ID: e.ID}
	case step.Running:
		return StepProgress{Function: function, Step: e.Step, ID: e.ID, Bytes: e.Bytes, Total: e.Total}
	}
	d := StepDone{Function: function, Step: e.Step, ID: e.ID, Took: e.Took, Bytes: e.Bytes, Count: e.Count, Unit: e.Unit, Cached: e.Cached, Empty: e.Empty}
	if e.Err != nil {
		d.Err = e.Err.Error()
	}
	return d
}

// Published: a function's image was built and published.
type Published struct {
	Function, Output string
	Build, Publish   time.Duration
}

// Skipped: a selected function is not built. Warning marks a skip the user
// should see even without progress (a function with no lang).
type Skipped struct {
	Function, Reason string
	Warning          bool
}

// Warning: something the user gave is accepted but doubtful, such as an
// unknown key in the stack file (Path and Line say where) or a flag that
// has no effect.
type Warning struct {
	Path string `json:",omitempty"`
	Line int    `json:",omitempty"`
	Msg  string
}

func (w Warning) String() string {
	if w.Path == "" {
		return w.Msg
	}
	return fmt.Sprintf("%s:%d: %s", w.Path, w.Line, w.Msg)
}

// Deployed: a gateway accepted a function.
type Deployed struct {
	Function, Image, URL string
	Code                 int
}

// Pulling: an image is not in the local image store (or --pull says to
// skip it) and comes from its registry.
type Pulling struct{ Image string }

// Serving: the local gateway serves its functions on URL until stopped.
type Serving struct{ URL string }

// GatewayLogin: the local gateway on URL asks User for the password in
// PasswordFile on /system/* and /ui/; the login is saved for faas-cli and
// kiln deploy in FaasConfig.
type GatewayLogin struct {
	URL, User, PasswordFile, FaasConfig string
}

// GatewayStopping: the local gateway stops every function.
type GatewayStopping struct{}

// Ready: a function answers on the local gateway, Took after its deploy.
type Ready struct {
	Function, URL string
	Took          time.Duration
}

// DeployFailed: one function did not start on the local gateway while
// others did; they keep running.
type DeployFailed struct{ Err error }

// MarshalJSON gives the error's message, which an error value lacks.
func (e DeployFailed) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct{ Err string }{e.Err.Error()})
}

// JSONLines returns a Progress that writes each event to w as one line of
// JSON, {"kind": KIND, "event": {...}}, for programs that follow a build.
func JSONLines(w io.Writer) Progress {
	var mu sync.Mutex
	return func(e Event) {
		b, err := json.Marshal(struct {
			Kind  string `json:"kind"`
			Event Event  `json:"event"`
		}{e.EventKind(), e})
		if err != nil {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		w.Write(append(b, '\n'))
	}
}

func (BuildStarted) EventKind() string    { return "build-started" }
func (LayerDone) EventKind() string       { return "layer" }
func (StepStarted) EventKind() string     { return "step-started" }
func (StepProgress) EventKind() string    { return "step-progress" }
func (StepDone) EventKind() string        { return "step-done" }
func (Published) EventKind() string       { return "published" }
func (Skipped) EventKind() string         { return "skipped" }
func (Warning) EventKind() string         { return "warning" }
func (Deployed) EventKind() string        { return "deployed" }
func (Pulling) EventKind() string         { return "pulling" }
func (Serving) EventKind() string         { return "serving" }
func (GatewayStopping) EventKind() string { return "gateway-stopping" }
func (GatewayLogin) EventKind() string    { return "gateway-login" }
func (Ready) EventKind() string           { return "ready" }
func (DeployFailed) EventKind() string    { return "deploy-failed" }
