//go:build !linux

package xattr

import "errors"

func set(string, string, string) error { return errors.ErrUnsupported }

func get(string, string) (string, error) { return "", errors.ErrUnsupported }
