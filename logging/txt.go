package logging

import (
	"io"
	"log/slog"
	"path/filepath"
	"strconv"

	"github.com/lmittmann/tint"
)

// TimeFormat is the time layout of the txt format.
const TimeFormat = "2006-01-02 15:04:05.000"

// newTxtHandler builds the single-line bracket format on tint:
//
//	[2026-11-24 14:22:01.123] [INFO] [cmd/serve.go:80] listening addr=:8010
//
// The source bracket appears only in full records.
func newTxtHandler(w io.Writer, terminal, full bool) slog.Handler {
	return tint.NewTextHandler(w, &tint.Options{
		AddSource: full,
		Level:     innerLevel,
		NoColor:   !terminal,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) != 0 {
				return a
			}
			switch a.Key {
			case slog.TimeKey:
				if a.Value.Kind() == slog.KindTime {
					return slog.String(slog.TimeKey, "["+a.Value.Time().Format(TimeFormat)+"]")
				}
			case slog.LevelKey:
				if l, ok := a.Value.Any().(slog.Level); ok {
					return tint.Attr(levelColor(l), slog.String(slog.LevelKey, "["+LevelName(l)+"]"))
				}
			case slog.SourceKey:
				if s, ok := a.Value.Any().(*slog.Source); ok {
					dir, file := filepath.Split(s.File)
					return slog.String(slog.SourceKey, "["+filepath.Join(filepath.Base(dir), file)+":"+strconv.Itoa(s.Line)+"]")
				}
			}
			return a
		},
	})
}

// levelColor is the ANSI 256-color code of a level's name.
func levelColor(l slog.Level) uint8 {
	levelColors := [...]uint8{13, 14, 12, 10, 11, 9} // parallel to Levels()
	levels := Levels()
	for i := len(levels) - 1; i >= 0; i-- {
		if l >= levels[i] {
			return levelColors[i]
		}
	}
	return levelColors[0]
}
