package main

import (
	"bytes"
	"log"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestLineWriter(t *testing.T) {
	tests := []struct {
		name   string
		prefix bool
		max    int
		writes []string
		want   string
	}{
		{"lines across writes", false, 64, []string{"a\nb", "c\n", "d"}, "a\nbc\nd\n"},
		{"carriage returns dropped", false, 64, []string{"win\r\n"}, "win\n"},
		{"long line cut at max", false, 4, []string{"abcdefghij\n"}, "abcd\nefgh\nij\n"},
		{"long line across writes", false, 4, []string{"ab", "cdef", "g\n"}, "abcd\nefg\n"},
		{"unbounded", false, -1, []string{strings.Repeat("x", 100) + "\n"}, strings.Repeat("x", 100) + "\n"},
		{"empty lines kept", false, 64, []string{"\n\n"}, "\n\n"},
		{"prefixed", true, 64, []string{"hello\nworld\n"}, "stdout: hello\nstdout: world\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			logger := log.New(&out, "", 0)
			w := newLineWriter(logger, &out, "stdout", tc.prefix, tc.max)
			for _, s := range tc.writes {
				if n, err := w.Write([]byte(s)); n != len(s) || err != nil {
					t.Fatalf("Write(%q) = %d, %v, want %d, nil", s, n, err, len(s))
				}
			}
			if err := w.Close(); err != nil {
				t.Fatalf("Close() = %v, want nil", err)
			}
			if diff := cmp.Diff(tc.want, out.String()); diff != "" {
				t.Errorf("output mismatch (-want +got):\n%s", diff)
			}
		})
	}
}
