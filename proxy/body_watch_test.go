package proxy

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

func TestLastEventEnd(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want int
	}{
		{"empty", "", 0},
		{"partial", "data: {\"a\":1}", 0},
		{"one line ending", "data: x\n", 0},
		{"lf", "data: x\n\n", 9},
		{"crlf", "data: x\r\n\r\n", 11},
		{"cr", "data: x\r\r", 9},
		{"two events and a partial", "data: a\n\ndata: b\n\ndata: c", 18},
		{"comment and event", ": keep-alive\n\ndata:x\n\n", 22},
		{"multi-line event", "data: a\ndata: b\n\n", 17},
		{"crlf then partial crlf", "data: a\r\n\r\ndata: b\r\n", 11},
		{"trailing cr may precede lf", "data: a\r\n\r", 10},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := lastEventEnd([]byte(tc.in)); got != tc.want {
				t.Errorf("lastEventEnd(%q) = %d, want %d", tc.in, got, tc.want)
			}
		})
	}
}

// cutReader yields data then fails with err.
type cutReader struct {
	r   io.Reader
	err error
}

func (c *cutReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if errors.Is(err, io.EOF) {
		return n, c.err
	}
	return n, err
}

func watchFor(t *testing.T, sse bool, body io.Reader) (*bodyWatch, *attempt) {
	t.Helper()
	in, err := http.NewRequestWithContext(t.Context(), http.MethodPost, "/v1/chat/completions", nil)
	if err != nil {
		t.Fatal(err)
	}
	a := &attempt{x: &exchange{in: in}, reqCtx: t.Context(), start: time.Now(), sse: sse}
	return newBodyWatch(io.NopCloser(body), a, slog.New(slog.DiscardHandler)), a
}

// TestBodyWatchSSEWholeEvents: every byte passes through in order, handed on at event
// boundaries only, even when the backend's reads split events anywhere.
func TestBodyWatchSSEWholeEvents(t *testing.T) {
	stream := "data: {\"a\":1}\n\ndata: {\"b\":2}\r\n\r\n: ping\n\ndata: [DONE]\n\n"
	w, a := watchFor(t, true, iotest.OneByteReader(strings.NewReader(stream)))
	var got strings.Builder
	buf := make([]byte, 64)
	for {
		n, err := w.Read(buf)
		got.WriteString(string(buf[:n]))
		if n > 0 && !endsOnBoundary([]byte(got.String())) {
			t.Errorf("the stream so far, %q, does not end on an event boundary", got.String())
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if got.String() != stream {
		t.Fatalf("got %q, want %q", got.String(), stream)
	}
	if a.firstByte <= 0 || a.readErr != nil || a.cut {
		t.Fatalf("firstByte %v readErr %v cut %v", a.firstByte, a.readErr, a.cut)
	}
}

// TestBodyWatchSSECut: a stream cut mid-event drops the partial event and ends with an
// error event and [DONE]; complete events before it still arrive.
func TestBodyWatchSSECut(t *testing.T) {
	src := &cutReader{r: strings.NewReader("data: {\"a\":1}\n\ndata: {\"b\":"), err: io.ErrUnexpectedEOF}
	w, a := watchFor(t, true, src)
	got, err := io.ReadAll(w)
	if err != nil {
		t.Fatalf("ReadAll: %v (a cut SSE stream must end cleanly)", err)
	}
	want := "data: {\"a\":1}\n\n" + string(streamErrorTail(ErrStreamCut))
	if string(got) != want {
		t.Fatalf("got %q\nwant %q", got, want)
	}
	if !strings.Contains(want, `"code":502`) || !strings.HasSuffix(want, "data: [DONE]\n\n") {
		t.Fatalf("tail %q is not a 502 error event followed by [DONE]", want)
	}
	if !a.cut || !errors.Is(a.readErr, io.ErrUnexpectedEOF) {
		t.Fatalf("cut %v readErr %v", a.cut, a.readErr)
	}
}

// TestBodyWatchClientGone: a body that ends because the client left is not a cut and
// gets no error tail.
func TestBodyWatchClientGone(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	in, _ := http.NewRequestWithContext(ctx, http.MethodPost, "/v1/completions", nil)
	a := &attempt{x: &exchange{in: in}, reqCtx: ctx, start: time.Now(), sse: true}
	cancel()
	w := newBodyWatch(io.NopCloser(&cutReader{r: strings.NewReader("data: 1\n\n"), err: context.Canceled}), a, slog.New(slog.DiscardHandler))
	got, err := io.ReadAll(w)
	if err != nil || string(got) != "data: 1\n\n" {
		t.Fatalf("got %q, %v", got, err)
	}
	if a.cut || a.readErr == nil {
		t.Fatalf("cut %v readErr %v; want a recorded read error that is not a cut", a.cut, a.readErr)
	}
}

// TestBodyWatchPlainCut: a non-SSE body passes its read error on, so the ReverseProxy
// aborts the client connection instead of ending a truncated JSON body cleanly.
func TestBodyWatchPlainCut(t *testing.T) {
	w, a := watchFor(t, false, &cutReader{r: strings.NewReader(`{"id":`), err: io.ErrUnexpectedEOF})
	got, err := io.ReadAll(w)
	if !errors.Is(err, io.ErrUnexpectedEOF) || string(got) != `{"id":` {
		t.Fatalf("got %q, %v; want the bytes and the error", got, err)
	}
	if !a.cut {
		t.Fatal("a plain body cut is not recorded")
	}
}

func TestBodyWatchLongEventBounded(t *testing.T) {
	long := "data: " + strings.Repeat("x", sseMaxPending+100) // no boundary at all
	w, _ := watchFor(t, true, strings.NewReader(long))
	got, err := io.ReadAll(w)
	if err != nil || string(got) != long {
		t.Fatalf("got %d bytes, %v; want %d bytes", len(got), err, len(long))
	}
	if cap(w.buf) > 2*sseMaxPending+sseInitialBuf {
		t.Fatalf("buffer grew to %d", cap(w.buf))
	}
}

// FuzzBodyWatchSSE: whatever the backend sends and however its reads split it, the client
// gets exactly those bytes, and every piece handed on but the last ends on an event
// boundary (or is an oversized run without one).
func FuzzBodyWatchSSE(f *testing.F) {
	f.Add([]byte("data: {\"a\":1}\n\ndata: [DONE]\n\n"), uint8(3))
	f.Add([]byte("data:x\r\n\r\ndata:y\r\r: c\n\n"), uint8(1))
	f.Add([]byte("\n\n\n\r\n\r"), uint8(2))
	f.Add([]byte("data: no end"), uint8(7))
	f.Fuzz(func(t *testing.T, stream []byte, step uint8) {
		src := &stepReader{b: stream, step: int(step%16) + 1}
		w, _ := watchFor(t, true, src)
		var got []byte
		buf := make([]byte, 1<<10)
		var pieces [][]byte
		for {
			n, err := w.Read(buf)
			if n > 0 {
				pieces = append(pieces, append([]byte(nil), buf[:n]...))
				got = append(got, buf[:n]...)
			}
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		if string(got) != string(stream) {
			t.Fatalf("got %q, want %q", got, stream)
		}
		// Pieces are handed on up to the last boundary of what was buffered, so the stream
		// up to any piece's end ends on a boundary, except after the last piece and where
		// a piece filled the reader's whole buffer.
		var sofar []byte
		for i, p := range pieces[:max(len(pieces)-1, 0)] {
			sofar = append(sofar, p...)
			if !endsOnBoundary(sofar) && len(p) < len(buf) {
				t.Fatalf("piece %d (%q) does not end on an event boundary", i, p)
			}
		}
	})
}

// stepReader returns at most step bytes per Read.
type stepReader struct {
	b    []byte
	step int
}

func (s *stepReader) Read(p []byte) (int, error) {
	if len(s.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), s.step)], s.b)
	s.b = s.b[n:]
	return n, nil
}

// endsOnBoundary is a reference check, independent of sseScanner: b ends with two line
// endings ("\r\n", "\n" or "\r"), read backwards.
func endsOnBoundary(b []byte) bool {
	n, i := 0, len(b)
	for n < 2 && i > 0 {
		switch b[i-1] {
		case '\n':
			i--
			if i > 0 && b[i-1] == '\r' {
				i--
			}
		case '\r':
			i--
		default:
			return false
		}
		n++
	}
	return n == 2
}
