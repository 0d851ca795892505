package main

import (
	"fmt"
	"strconv"
	"strings"
)

// triState is a bool that may also be "auto" (the zero value): decide at run time.
type triState int

const (
	triAuto triState = iota
	triTrue
	triFalse
)

func (t triState) String() string {
	switch t {
	case triTrue:
		return "true"
	case triFalse:
		return "false"
	}
	return "auto"
}

// Bool is the setting as *bool: nil for auto.
func (t triState) Bool() *bool {
	switch t {
	case triTrue:
		b := true
		return &b
	case triFalse:
		b := false
		return &b
	}
	return nil
}

// byteSize is a number of bytes, written as an integer or with a unit: 512KiB, 32MiB,
// 1GiB (powers of 1024) or 500KB, 10MB, 1GB (powers of 1000).
type byteSize int64

// parseByteSize parses "32MiB", "1048576", "10MB"; the unit is case-insensitive.
func parseByteSize(s string) (byteSize, error) {
	t := strings.TrimSpace(s)
	i := len(t)
	for i > 0 && (t[i-1] < '0' || t[i-1] > '9') {
		i--
	}
	num, unit := strings.TrimSpace(t[:i]), strings.ToLower(strings.TrimSpace(t[i:]))
	mult := int64(1)
	switch unit {
	case "", "b":
	case "kib":
		mult = 1 << 10
	case "mib":
		mult = 1 << 20
	case "gib":
		mult = 1 << 30
	case "kb":
		mult = 1000
	case "mb":
		mult = 1000 * 1000
	case "gb":
		mult = 1000 * 1000 * 1000
	default:
		return 0, fmt.Errorf("unknown unit %q", t[i:])
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("not a size: %q", s)
	}
	return byteSize(n * mult), nil
}

// String writes the size with the largest binary unit that divides it.
func (b byteSize) String() string {
	switch {
	case b != 0 && b%(1<<30) == 0:
		return strconv.FormatInt(int64(b>>30), 10) + "GiB"
	case b != 0 && b%(1<<20) == 0:
		return strconv.FormatInt(int64(b>>20), 10) + "MiB"
	case b != 0 && b%(1<<10) == 0:
		return strconv.FormatInt(int64(b>>10), 10) + "KiB"
	}
	return strconv.FormatInt(int64(b), 10)
}
