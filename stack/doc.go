// Package stack reads faas-cli stack files (stack.yml). It keeps faas-cli's
// rules: provider.name must be openfaas, version if present must be 1.0,
// function names are the keys under functions, and relative handler paths
// are resolved against the working directory, not the file's folder.
package stack
