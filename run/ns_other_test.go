//go:build !linux

package run

import "errors"

func tryNamespaces(string) error { return errors.ErrUnsupported }
