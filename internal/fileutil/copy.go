// Package fileutil has file operations several packages share.
package fileutil

import (
	"io"
	"os"
)

// CopyNew copies the file src to dst, which it creates with mode 0644:
// a dst that exists already is an error, never overwritten.
func CopyNew(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
