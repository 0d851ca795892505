// Package logging builds the slog handlers vllm-proxy writes with: six levels (Loud, Verbose,
// Debug, Info, Warning, Error), three formats (txt through tint, json, yaml), and the rule
// that a record at Error or above, or any record written to something that is not a
// terminal, carries every detail it has (attributes, the full error chain, the source
// location).
//
// Packages never build handlers; they take a *slog.Logger from cmd and follow the level
// contract documented on LevelVerbose and LevelLoud.
package logging

import (
	"fmt"
	"log/slog"
	"strconv"
	"strings"
)

// The six levels, loudest first. Debug, Info, Warning and Error equal slog's own levels, so
// logger.Debug/Info/Warn/Error work unchanged; Verbose and Loud sit below Debug.
const (
	// LevelLoud adds, on top of Verbose, the request and response headers (credentials
	// masked, see Headers) and bodies truncated to LoudBodyLimit bytes (see Body), one
	// record per forwarded SSE event, and every Redis command's result.
	LevelLoud slog.Level = -12
	// LevelVerbose adds, on top of Debug, one record per request with its routing decision
	// (candidate backends, their scores, the pick, each retry and why), one record per
	// metrics scrape and health probe with its result, and one record per batch line
	// dispatched.
	LevelVerbose slog.Level = -8
	// LevelDebug is slog.LevelDebug: state changes (backend up/down, models discovered,
	// config reloads, leases taken and lost) and request failures the client already saw.
	LevelDebug = slog.LevelDebug
	// LevelInfo is slog.LevelInfo, the default: lifecycle (start, listen, stop) and
	// operator-relevant events.
	LevelInfo = slog.LevelInfo
	// LevelWarning is slog.LevelWarn: degraded but working (a backend failing, a retry
	// budget exhausted, Redis reconnecting).
	LevelWarning = slog.LevelWarn
	// LevelError is slog.LevelError, the floor: -q never silences it.
	LevelError = slog.LevelError
)

// Levels lists the six levels loudest first; verbosity steps move along it.
func Levels() [6]slog.Level {
	return [...]slog.Level{LevelLoud, LevelVerbose, LevelDebug, LevelInfo, LevelWarning, LevelError}
}

// levelNames are the printed names, parallel to Levels.
func levelNames() [6]string {
	return [...]string{"LOUD", "VERBOSE", "DEBUG", "INFO", "WARNING", "ERROR"}
}

// ParseLevel parses a VLLM_PXY_VERBOSITY value, case-insensitively: "1" or "loud",
// "verbose", "debug", "info", "warning" (or "warn"), and "0", "quiet" or "error".
func ParseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "1", "loud":
		return LevelLoud, nil
	case "verbose":
		return LevelVerbose, nil
	case "debug":
		return LevelDebug, nil
	case "info":
		return LevelInfo, nil
	case "warning", "warn":
		return LevelWarning, nil
	case "0", "quiet", "error":
		return LevelError, nil
	}
	return 0, fmt.Errorf("unknown verbosity %q (want 1/loud, verbose, debug, info, warning, or 0/quiet/error)", s)
}

// Shift moves level by steps along Loud, Verbose, Debug, Info, Warning, Error: a positive
// steps is louder (-v), a negative one quieter (-q). The result is clamped to Loud and
// Error, so logging can never be switched off. A level between the six named ones first
// snaps to the next quieter named level.
func Shift(level slog.Level, steps int) slog.Level {
	levels := Levels()
	i := len(levels) - 1
	for j, l := range levels {
		if level <= l {
			i = j
			break
		}
	}
	i -= steps
	i = max(0, min(i, len(levels)-1))
	return levels[i]
}

// LevelName is the printed name of a level: LOUD, VERBOSE, DEBUG, INFO, WARNING or ERROR,
// and for anything in between the next louder name plus an offset, e.g. "INFO+2".
func LevelName(level slog.Level) string {
	levels, names := Levels(), levelNames()
	for i := len(levels) - 1; i >= 0; i-- {
		if level >= levels[i] {
			if d := level - levels[i]; d != 0 {
				return names[i] + "+" + strconv.Itoa(int(d))
			}
			return names[i]
		}
	}
	return names[0] + strconv.Itoa(int(level-levels[0]))
}
