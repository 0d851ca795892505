package logging

import (
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/term"
)

// Format is an output format for log records.
type Format string

// The formats -L/--log-format takes.
const (
	// FormatTxt is one line per record, "[time] [LEVEL] message key=value ...", colored on
	// a terminal, through lmittmann/tint.
	FormatTxt Format = "txt"
	// FormatJSON is one JSON object per line.
	FormatJSON Format = "json"
	// FormatYAML is one YAML document per record, each starting with "---".
	FormatYAML Format = "yaml"
)

// ParseFormat parses a -L value, case-insensitively: txt, json, yaml or yml.
func ParseFormat(s string) (Format, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "txt":
		return FormatTxt, nil
	case "json":
		return FormatJSON, nil
	case "yaml", "yml":
		return FormatYAML, nil
	}
	return "", fmt.Errorf("unknown log format %q (want txt, json, yaml or yml)", s)
}

// DefaultFormat is txt for a terminal and json for anything else.
func DefaultFormat(terminal bool) Format {
	if terminal {
		return FormatTxt
	}
	return FormatJSON
}

// IsTerminal reports whether w is an *os.File connected to a terminal.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
