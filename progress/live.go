package progress

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/kiln-build/kiln/project"
)

// maxLive is how many running steps the live display shows at most; a
// line says how many more run. It keeps the display within a screen,
// where the cursor can reach all of it.
const maxLive = 8

// live is the display of the running steps at the bottom of a terminal:
// each change of it moves the cursor up to its first line, clears to the
// end of the screen, prints the lines finished meanwhile and the display
// again, in one write. The Text's lock guards it.
type live struct {
	w     io.Writer
	width int
	mu    *sync.Mutex
	steps []*running
	// drawn is how many lines of the display are on the screen.
	drawn int
	last  time.Time
	timer *time.Timer
	// every is the least time between two draws for progress; tick is
	// how often the display is drawn while steps run, for their clocks
	// (0: only on events).
	every, tick time.Duration
}

// running is a step on the display.
type running struct {
	id           uint64
	function     string
	step         string
	bytes, total int64
	start        time.Time
}

func newLive(w io.Writer, width int, mu *sync.Mutex) *live {
	return &live{w: w, width: width, mu: mu, every: 100 * time.Millisecond, tick: time.Second}
}

func (l *live) start(e project.StepStarted) {
	l.steps = append(l.steps, &running{id: e.ID, function: e.Function, step: e.Step, start: time.Now()})
	l.soon()
}

func (l *live) progress(e project.StepProgress) {
	for _, s := range l.steps {
		if s.id == e.ID {
			s.bytes, s.total = e.Bytes, e.Total
			l.soon()
		}
	}
}

// end takes step id off the display and prints its lines above it.
func (l *live) end(id uint64, lines ...string) {
	l.steps = slices.DeleteFunc(l.steps, func(s *running) bool { return s.id == id })
	l.draw(lines)
}

// soon draws the display now, or once every has passed since the last
// draw.
func (l *live) soon() {
	wait := l.every - time.Since(l.last)
	if wait <= 0 {
		l.draw(nil)
		return
	}
	l.after(wait)
}

// after draws the display in d, unless a draw is already due.
func (l *live) after(d time.Duration) {
	if l.timer != nil {
		return
	}
	l.timer = time.AfterFunc(d, func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.timer = nil
		l.draw(nil)
	})
}

// hide clears the display, for a write elsewhere.
func (l *live) hide() {
	if l.drawn > 0 {
		fmt.Fprintf(l.w, "\r\x1b[%dA\x1b[J", l.drawn)
		l.drawn = 0
	}
}

// draw prints lines above the display and draws it anew.
func (l *live) draw(lines []string) {
	if l.drawn == 0 && len(l.steps) == 0 && len(lines) == 0 {
		return
	}
	var b strings.Builder
	if l.drawn > 0 {
		fmt.Fprintf(&b, "\r\x1b[%dA\x1b[J", l.drawn)
	}
	for _, line := range lines {
		b.WriteString(line + "\n")
	}
	now := time.Now()
	shown := l.steps[:min(len(l.steps), maxLive)]
	for _, s := range shown {
		b.WriteString(l.fit(s.line(now)) + "\n")
	}
	l.drawn = len(shown)
	if more := len(l.steps) - len(shown); more > 0 {
		b.WriteString(l.fit(fmt.Sprintf("and %d more steps", more)) + "\n")
		l.drawn++
	}
	io.WriteString(l.w, b.String())
	l.last = now
	if len(l.steps) > 0 && l.tick > 0 {
		l.after(l.tick)
	}
}

// line is the display's line of a running step:
//
//	FUNCTION: STEP[ BYTES[ of TOTAL]] (SECONDSs)
func (s *running) line(now time.Time) string {
	line := s.function + ": " + s.step
	if s.bytes > 0 {
		line += " " + HumanSize(s.bytes)
		if s.total > 0 {
			line += " of " + HumanSize(s.total)
		}
	}
	return fmt.Sprintf("%s (%ds)", line, int(now.Sub(s.start).Seconds()))
}

// fit cuts s to the width, less a column: a line that wraps would take
// two lines of the screen where the display counts one.
func (l *live) fit(s string) string {
	if utf8.RuneCountInString(s) < l.width {
		return s
	}
	r := []rune(s)
	return string(r[:max(l.width-1, 1)])
}
