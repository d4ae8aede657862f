package main

import (
	"bytes"
	"io"
	"log"
	"sync"
)

// lineWriter turns a child's output stream into log lines. It never blocks
// the child on a long line: a line longer than max bytes is cut into pieces
// of max bytes, where a line scanner would stop reading and leave the child
// stuck on a full pipe.
type lineWriter struct {
	mu   sync.Mutex
	emit func(line []byte)
	max  int // -1: no limit
	buf  []byte
}

// newLineWriter writes each line of the child's stream name either through
// logger with the stream name as prefix (prefix_logs) or as is to raw.
func newLineWriter(logger *log.Logger, raw io.Writer, name string, prefix bool, max int) *lineWriter {
	w := &lineWriter{max: max}
	if prefix {
		w.emit = func(line []byte) { logger.Printf("%s: %s", name, line) }
	} else {
		var mu sync.Mutex
		w.emit = func(line []byte) {
			// One Write per line keeps lines from two children whole.
			mu.Lock()
			defer mu.Unlock()
			// Copy: line aliases the writer's buffer.
			out := make([]byte, 0, len(line)+1)
			_, _ = raw.Write(append(append(out, line...), '\n'))
		}
	}
	return w
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		chunk := p
		if i >= 0 {
			chunk = p[:i]
		}
		w.buf = append(w.buf, chunk...)
		for w.max > 0 && len(w.buf) > w.max {
			w.emit(w.buf[:w.max])
			w.buf = append(w.buf[:0], w.buf[w.max:]...)
		}
		if i < 0 {
			break
		}
		w.flushLine()
		p = p[i+1:]
	}
	return n, nil
}

func (w *lineWriter) flushLine() {
	w.emit(bytes.TrimSuffix(w.buf, []byte{'\r'}))
	w.buf = w.buf[:0]
}

// Close emits a last line that had no newline.
func (w *lineWriter) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.buf) > 0 {
		w.flushLine()
	}
	return nil
}
