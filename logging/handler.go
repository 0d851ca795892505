package logging

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
)

// Options choose a handler. The zero value is Info, json, not a terminal.
type Options struct {
	// Level is the minimum level written; nil means LevelInfo. Pass a *slog.LevelVar to
	// change it while running (config reload).
	Level slog.Leveler
	// Format is txt, json or yaml; empty means DefaultFormat(Terminal).
	Format Format
	// Terminal says the writer is a terminal: txt gets colors, and records below Error
	// leave out the source location and show an error as its message only. When false,
	// every record carries every detail.
	Terminal bool
}

// New returns a logger writing to w (cmd passes os.Stdout) as o says.
func New(w io.Writer, o Options) *slog.Logger { return slog.New(NewHandler(w, o)) }

// NewHandler returns the handler behind New. It is safe for concurrent use; every record
// is one Write call on w, serialized with the handler's clones.
func NewHandler(w io.Writer, o Options) slog.Handler {
	if o.Level == nil {
		o.Level = LevelInfo
	}
	if o.Format == "" {
		o.Format = DefaultFormat(o.Terminal)
	}
	lw := &lockedWriter{w: w}
	h := &handler{level: o.Level, full: inner(lw, o, true), joinChain: o.Format == FormatTxt}
	if o.Terminal {
		h.brief = inner(lw, o, false)
	}
	return h
}

// innerLevel lets the inner handlers pass everything; the outer handler filters.
const innerLevel slog.Level = -1 << 20

func inner(w io.Writer, o Options, full bool) slog.Handler {
	switch o.Format {
	case FormatTxt:
		return newTxtHandler(w, o.Terminal, full)
	case FormatYAML:
		return newJSONHandler(&yamlWriter{w: w}, full)
	default:
		return newJSONHandler(w, full)
	}
}

func newJSONHandler(w io.Writer, full bool) slog.Handler {
	return slog.NewJSONHandler(w, &slog.HandlerOptions{
		AddSource: full,
		Level:     innerLevel,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if a.Key == slog.LevelKey && len(groups) == 0 {
				if l, ok := a.Value.Any().(slog.Level); ok {
					return slog.String(slog.LevelKey, LevelName(l))
				}
			}
			return a
		},
	})
}

// handler filters by level and routes each record to the full or the brief inner
// handler, expanding error attributes to match.
type handler struct {
	level     slog.Leveler
	full      slog.Handler
	brief     slog.Handler // nil: every record is full
	joinChain bool         // txt: the chain as one " | "-separated string, not a list
}

func (h *handler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level.Level() }

func (h *handler) Handle(ctx context.Context, r slog.Record) error {
	full := h.brief == nil || r.Level >= LevelError
	out := slog.NewRecord(r.Time, r.Level, r.Message, r.PC)
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(h.expand(a, full))
		return true
	})
	if full {
		return h.full.Handle(ctx, out)
	}
	return h.brief.Handle(ctx, out)
}

func (h *handler) WithAttrs(as []slog.Attr) slog.Handler {
	if len(as) == 0 {
		return h
	}
	c := *h
	c.full = h.full.WithAttrs(h.expandAll(as, true))
	if h.brief != nil {
		c.brief = h.brief.WithAttrs(h.expandAll(as, false))
	}
	return &c
}

func (h *handler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	c := *h
	c.full = h.full.WithGroup(name)
	if h.brief != nil {
		c.brief = h.brief.WithGroup(name)
	}
	return &c
}

func (h *handler) expandAll(as []slog.Attr, full bool) []slog.Attr {
	out := make([]slog.Attr, len(as))
	for i, a := range as {
		out[i] = h.expand(a, full)
	}
	return out
}

// expand resolves a and turns every error in it into its message (brief) or into a
// group {msg, chain} listing each wrapped error with its type (full).
func (h *handler) expand(a slog.Attr, full bool) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindGroup:
		return slog.Attr{Key: a.Key, Value: slog.GroupValue(h.expandAll(v.Group(), full)...)}
	case slog.KindAny:
		err, ok := v.Any().(error)
		if !ok || err == nil {
			break
		}
		if !full {
			return slog.String(a.Key, err.Error())
		}
		chain := slog.Any("chain", ErrorChain(err))
		if h.joinChain {
			chain = slog.String("chain", strings.Join(ErrorChain(err), " | "))
		}
		return slog.Group(a.Key, slog.String("msg", err.Error()), chain)
	}
	return slog.Attr{Key: a.Key, Value: v}
}

// maxChain bounds ErrorChain against pathological or cyclic error trees.
const maxChain = 32

// ErrorChain lists err and everything it wraps, depth first, each as "type: message".
// Both Unwrap() error and Unwrap() []error (errors.Join, fmt.Errorf with several %w) are
// followed.
func ErrorChain(err error) []string {
	var out []string
	var walk func(error)
	walk = func(e error) {
		if e == nil || len(out) >= maxChain {
			return
		}
		out = append(out, fmt.Sprintf("%T: %s", e, e.Error()))
		//nolint:errorlint // walking the wrap tree itself needs the Unwrap interfaces
		if m, ok := e.(interface{ Unwrap() []error }); ok {
			for _, c := range m.Unwrap() {
				walk(c)
			}
			return
		}
		walk(errors.Unwrap(e))
	}
	walk(err)
	return out
}

// lockedWriter serializes the writes of the full and the brief handler.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
