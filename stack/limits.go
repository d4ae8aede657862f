package stack

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
)

// MaxSize is the largest stack file Read and Parse accept, before and
// after ${VAR} substitution: 16 MiB.
const MaxSize = 16 << 20

// maxItems bounds the bytes of data that may start a YAML node or a ${VAR}
// (",[{-:?*$"): yaml.v3 holds the whole tree, about 200 bytes a node, and
// this keeps the parse of any accepted file under 100 MB. A stack file
// with a thousand functions has about 30,000.
const maxItems = 100_000

// maxExpanded bounds the mapping entries and values a parse decodes once
// anchors and merge keys are expanded: an alias of a large mapping,
// repeated, must not multiply memory.
const maxExpanded = 400_000

// ErrTooLarge is a stack file over MaxSize.
var ErrTooLarge = errors.New("stack file over 16 MiB; kiln reads no larger ones")

// ErrTooComplex is a stack file that would take too much memory to parse:
// too many YAML items, or anchors expanding to too much.
var ErrTooComplex = errors.New("stack file too complex to parse within 100 MB")

// readFile reads path, refusing files over MaxSize before reading them.
func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if info, err := f.Stat(); err == nil && info.Mode().IsRegular() && info.Size() > MaxSize {
		return nil, ErrTooLarge
	}
	return readLimited(f, 0)
}

// readLimited reads r up to MaxSize; size, when known, sizes the buffer.
func readLimited(r io.Reader, size int64) ([]byte, error) {
	var buf bytes.Buffer
	if size > 0 && size <= MaxSize {
		buf.Grow(int(size) + bytes.MinRead)
	}
	n, err := buf.ReadFrom(io.LimitReader(r, MaxSize+1))
	if err != nil {
		return nil, err
	}
	if n > MaxSize {
		return nil, ErrTooLarge
	}
	return buf.Bytes(), nil
}

func fetch(ctx context.Context, c *http.Client, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET answered %s", resp.Status)
	}
	if resp.ContentLength > MaxSize {
		return nil, ErrTooLarge
	}
	return readLimited(resp.Body, resp.ContentLength)
}

// countItems counts the bytes that may start a YAML node or a ${VAR}:
// every node but the first needs one (a flow ",", "[" or "{", a block
// "-", ":" or "?", an alias's "*"), and each makes two nodes at most.
func countItems(data []byte) int {
	n := 0
	for _, c := range data {
		switch c {
		case ',', '[', '{', '-', ':', '?', '*', '$':
			n++
		}
	}
	return n
}
