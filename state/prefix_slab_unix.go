//go:build unix

package state

import (
	"fmt"
	"syscall"
	"unsafe"
)

// mapSlice returns a zeroed slice of n Ts in anonymous memory mapped outside the Go heap,
// and the mapping to release with unmap. T must hold no pointers: the garbage collector
// does not see this memory. Pages cost RSS only once touched, and none of it counts
// toward the heap goal, so a GOGC above 100 does not multiply it.
func mapSlice[T any](n int) ([]T, []byte, error) {
	var zero T
	size := n * int(unsafe.Sizeof(zero))
	if n < 1 || size < n {
		return nil, nil, fmt.Errorf("mapping %d elements: bad size", n)
	}
	b, err := syscall.Mmap(-1, 0, size, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		return nil, nil, fmt.Errorf("mapping %d bytes: %w", size, err)
	}
	return unsafe.Slice((*T)(unsafe.Pointer(&b[0])), n), b, nil // #nosec G103 -- views a fresh anonymous mapping of n*sizeof(T) bytes (checked above) as []T; T holds no pointers
}

// unmap releases mappings made by mapSlice.
func unmap(maps [][]byte) {
	for _, b := range maps {
		_ = syscall.Munmap(b)
	}
}
