package proxy

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"time"
)

// bodyWatch wraps a backend response body on its way to the client. It notes when the
// first body byte arrived and what ended the body early. For an SSE stream it hands the
// ReverseProxy whole events only (every byte, in order, unchanged), so that each write the
// ReverseProxy flushes is one or more complete events, and so that a stream cut by the
// backend can end cleanly: the partial event is dropped and, as vLLM itself does when
// generation fails mid-stream, an error event and "data: [DONE]" close the stream.
//
// Other bodies pass through as read; a read error is returned as is, which makes the
// ReverseProxy abort the client connection so a truncated body cannot look complete.
type bodyWatch struct {
	src io.ReadCloser
	a   *attempt
	log *slog.Logger // for the Loud per-event records

	// SSE only.
	buf    []byte // read from src, not yet handed on
	ready  int    // leading bytes of buf that end on an event boundary
	scan   sseScanner
	srcErr error  // the error src returned (io.EOF: clean end)
	tail   []byte // what the client gets after a cut
}

const (
	// sseInitialBuf is the first buffer of an SSE stream; vLLM events are far smaller.
	sseInitialBuf = 4 << 10
	// sseMaxPending is the longest run of bytes without an event boundary that is held
	// back; past it the bytes are handed on anyway so memory stays bounded.
	sseMaxPending = 1 << 20
)

func newBodyWatch(src io.ReadCloser, a *attempt, log *slog.Logger) *bodyWatch {
	return &bodyWatch{src: src, a: a, log: log}
}

// Close closes the backend body.
func (b *bodyWatch) Close() error { return b.src.Close() }

// Read implements io.Reader.
func (b *bodyWatch) Read(p []byte) (int, error) {
	if !b.a.sse {
		n, err := b.src.Read(p)
		b.saw(n, err)
		if err != nil && !errors.Is(err, io.EOF) {
			b.ended(err)
		}
		return n, err
	}
	return b.readSSE(p)
}

func (b *bodyWatch) readSSE(p []byte) (int, error) {
	for {
		if b.ready > 0 {
			n := copy(p, b.buf[:b.ready])
			if b.a.x.loud {
				logEvents(b.log, b.a, b.buf[:n])
			}
			b.buf = b.buf[:copy(b.buf, b.buf[n:])]
			b.ready -= n
			b.scan.consumed(n)
			return n, nil
		}
		if len(b.tail) > 0 {
			n := copy(p, b.tail)
			b.tail = b.tail[n:]
			return n, nil
		}
		if b.srcErr != nil {
			if errors.Is(b.srcErr, io.EOF) && len(b.buf) > 0 {
				b.ready = len(b.buf) // a clean end without a final blank line: pass it on
				continue
			}
			return 0, io.EOF
		}
		b.fill()
	}
}

// fill reads once from the backend and updates the ready mark.
func (b *bodyWatch) fill() {
	if b.buf == nil {
		b.buf = make([]byte, 0, sseInitialBuf)
	}
	if cap(b.buf)-len(b.buf) < 512 {
		grown := make([]byte, len(b.buf), 2*cap(b.buf))
		copy(grown, b.buf)
		b.buf = grown
	}
	n, err := b.src.Read(b.buf[len(b.buf):cap(b.buf)])
	b.buf = b.buf[:len(b.buf)+n]
	b.saw(n, err)
	if n > 0 {
		if end := b.scan.scan(b.buf); end > 0 {
			b.ready = end
		}
		if b.ready == 0 && len(b.buf) >= sseMaxPending {
			b.ready = len(b.buf)
		}
	}
	if err == nil {
		return
	}
	b.srcErr = err
	if errors.Is(err, io.EOF) {
		return
	}
	b.buf = b.buf[:b.ready] // drop the partial event; complete ones still go out
	if b.ended(err) {
		b.tail = streamErrorTail(b.a.finalStreamError())
	}
}

// saw records the time of the first byte (or of an empty body's end).
func (b *bodyWatch) saw(n int, err error) {
	if b.a.firstByte == 0 && (n > 0 || err != nil) {
		b.a.firstByte = max(time.Since(b.a.start), time.Nanosecond)
		if b.a.onFirst != nil {
			b.a.onFirst()
		}
	}
}

// ended records a body that ended early and reports whether it was a cut by the backend
// (or the request timeout), as opposed to the client going away.
func (b *bodyWatch) ended(err error) bool {
	if b.a.readErr != nil {
		return b.a.cut
	}
	b.a.readErr = err
	b.a.cut = b.a.x.in.Context().Err() == nil
	return b.a.cut
}

// finalStreamError is the error a cut stream reports to the client.
func (a *attempt) finalStreamError() error {
	if errors.Is(context.Cause(a.reqCtx), errRequestTimeout) {
		return ErrTimeout
	}
	return ErrStreamCut
}

// streamErrorTail is what a cut SSE stream ends with: one error event in vLLM's shape and
// the end-of-stream marker.
func streamErrorTail(err error) []byte {
	_, info := errorInfoFor(err)
	data, _ := json.Marshal(errorBody{Error: info}) // plain strings and ints
	out := make([]byte, 0, len(data)+32)
	out = append(out, "data: "...)
	out = append(out, data...)
	out = append(out, "\n\ndata: [DONE]\n\n"...)
	return out
}

// sseScanner finds event boundaries (blank lines: two line endings in a row, each
// "\r\n", "\n" or "\r") incrementally, so a long event arriving in many small reads is
// scanned once. It starts outside any line ending, as a stream and each event do.
type sseScanner struct {
	pos int  // bytes of the buffer already scanned
	eol bool // the last byte scanned ended a line
	cr  bool // that line ended with "\r": a following "\n" belongs to it
}

// scan scans b[s.pos:] and returns the offset just past the last boundary found in it, or 0.
func (s *sseScanner) scan(b []byte) int {
	end := 0
	for i := s.pos; i < len(b); i++ {
		switch c := b[i]; {
		case c == '\n' && s.cr: // the LF of a CRLF whose CR was already counted
			s.cr = false
			if end == i {
				end = i + 1
			}
		case c == '\r' || c == '\n':
			s.cr = c == '\r'
			if s.eol {
				end = i + 1
			}
			s.eol = true
		default:
			s.eol, s.cr = false, false
		}
	}
	s.pos = len(b)
	return end
}

// consumed tells the scanner the first n bytes left the buffer.
func (s *sseScanner) consumed(n int) { s.pos -= n }

// lastEventEnd is the offset just past the last event boundary in b, or 0.
func lastEventEnd(b []byte) int {
	var s sseScanner
	return s.scan(b)
}
