package routing

import (
	"log/slog"
	"strings"
	"time"
)

func attrBackend(id string) slog.Attr { return slog.String("backend", id) }

func errAttr(err error) slog.Attr { return slog.String("err", err.Error()) }

func joinProblems(p []string) string { return strings.Join(p, "; ") }

const (
	slogDebug = slog.LevelDebug
	slogInfo  = slog.LevelInfo
	slogWarn  = slog.LevelWarn
)

func durAttr(k string, d time.Duration) slog.Attr { return slog.Duration(k, d) }

func reasonAttr(why string) slog.Attr { return slog.String("reason", why) }

func intAttr(k string, v int) slog.Attr { return slog.Int(k, v) }

func boolAttr(k string, v bool) slog.Attr { return slog.Bool(k, v) }
