package gateway

import (
	"bytes"
	"io"
	"sync"
)

// prefixWriter writes each complete line to w with a prefix. Writers of
// several functions share w, so each line goes out in one Write. tap, when
// set, is given each line too, without the prefix.
type prefixWriter struct {
	mu     sync.Mutex
	w      io.Writer
	prefix []byte
	buf    []byte
	tap    func(line string)
}

func newPrefixWriter(w io.Writer, prefix string) *prefixWriter {
	return &prefixWriter{w: w, prefix: []byte(prefix)}
}

func (p *prefixWriter) emit(line []byte) error {
	if p.tap != nil {
		p.tap(string(line))
	}
	_, err := p.w.Write(append(append([]byte(nil), p.prefix...), line...))
	return err
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.buf = append(p.buf, b...)
	for {
		i := bytes.IndexByte(p.buf, '\n')
		if i < 0 {
			break
		}
		line := p.buf[:i+1]
		p.buf = p.buf[i+1:]
		if err := p.emit(line); err != nil {
			return len(b), err
		}
	}
	return len(b), nil
}

// Flush writes a last line that had no newline.
func (p *prefixWriter) Flush() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.buf) > 0 {
		p.emit(append(p.buf, '\n'))
		p.buf = nil
	}
}
