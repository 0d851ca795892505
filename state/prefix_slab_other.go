//go:build !unix

package state

import "errors"

// mapSlice is not available off unix: the cache allocates on the Go heap instead.
func mapSlice[T any](int) ([]T, []byte, error) {
	return nil, nil, errors.New("no anonymous mappings on this platform")
}

// unmap releases mappings made by mapSlice (none here).
func unmap([][]byte) {}
