package sim

import (
	"net/http"
)

// sseWriter writes server-sent events the way vLLM does: "data: {json}\n\n" per chunk,
// ending with "data: [DONE]\n\n". It cuts the connection after dropAfter chunks when
// that fault is set.
type sseWriter struct {
	w         http.ResponseWriter
	rc        *http.ResponseController
	buf       []byte
	chunks    int
	dropAfter int
}

// event buffers one data event holding payload.
func (e *sseWriter) event(payload []byte) {
	e.buf = append(e.buf, "data: "...)
	e.buf = append(e.buf, payload...)
	e.buf = append(e.buf, "\n\n"...)
	e.chunks++
	if e.dropAfter > 0 && e.chunks >= e.dropAfter {
		e.flush()
		// net/http closes the connection without the terminating chunk and does not log.
		panic(http.ErrAbortHandler)
	}
}

// flush sends what is buffered.
func (e *sseWriter) flush() {
	if len(e.buf) == 0 {
		return
	}
	_, _ = e.w.Write(e.buf) // a failed write means the client left; the wait loop notices
	e.buf = e.buf[:0]
	_ = e.rc.Flush()
}

// stream answers j as an SSE stream, emitting tokens as the engine produces them.
func (s *Server) stream(w http.ResponseWriter, r *http.Request, j *job) {
	h := w.Header()
	h["Content-Type"] = []string{"text/event-stream; charset=utf-8"}
	h["Cache-Control"] = []string{"no-cache"}
	w.WriteHeader(http.StatusOK)
	s.counts.status(http.StatusOK)
	// The headers go out at once; the first event (the role chunk) waits for the first
	// token, as vLLM's, which sends it from the first engine output: a client's (and the
	// proxy's) time to first byte is then the time to first token.
	_ = http.NewResponseController(w).Flush()
	b, pb := getBuf(), getBuf()
	defer putBuf(b)
	defer putBuf(pb)
	e := &sseWriter{w: w, rc: http.NewResponseController(w), buf: (*b)[:0], dropAfter: s.faults.Load().DropStreamAfter}
	defer func() { *b = e.buf }()
	payload := (*pb)[:0]
	defer func() { *pb = payload }()

	if j.kind == kindChat {
		payload = j.appendHead(payload[:0], "chat.completion.chunk")
		payload = append(payload, `,"choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}`...)
		e.event(payload)
	}
	for i, q := range j.seqs {
		sent := 0
		for {
			fin := q.finished.Load()
			gen := int(q.generated.Load())
			for k := sent; k < gen; k++ {
				// A sequence ends at its maxTokens-th token (fixed before it was queued). fin
				// alone can miss it: the engine may emit that token and finish between the two
				// loads above, and the chunk would then go out without its finish_reason.
				last := k == q.maxTokens-1 || fin && k == gen-1
				payload = j.appendChunk(payload[:0], i, q, k, last)
				e.event(payload)
			}
			sent = gen
			if fin {
				break
			}
			if sent > 0 || i > 0 {
				e.flush()
			}
			select {
			case <-q.notify:
			case <-r.Context().Done():
				return
			case <-s.ctx.Done():
				abortResponse()
			}
		}
	}
	if j.g.IncludeUsage {
		object := "chat.completion.chunk"
		if j.kind == kindCompletion {
			object = "text_completion"
		}
		payload = j.appendHead(payload[:0], object)
		payload = append(payload, `,"choices":[],"usage":`...)
		payload = j.appendUsage(payload)
		payload = append(payload, '}')
		e.event(payload)
	}
	e.buf = append(e.buf, "data: [DONE]\n\n"...)
	e.flush()
}

// appendChunk renders the chunk carrying output token k of choice i.
func (j *job) appendChunk(dst []byte, i int, q *seq, k int, last bool) []byte {
	if j.kind == kindChat {
		dst = j.appendHead(dst, "chat.completion.chunk")
		dst = append(dst, `,"choices":[{"index":0,"delta":{"content":`...)
		dst = appendOutputText(dst, q, k, k+1)
		dst = append(dst, `},"logprobs":null,"finish_reason":`...)
	} else {
		dst = j.appendHead(dst, "text_completion")
		dst = append(dst, `,"choices":[{"index":`...)
		dst = appendInt(dst, i)
		dst = append(dst, `,"text":`...)
		dst = appendOutputText(dst, q, k, k+1)
		dst = append(dst, `,"logprobs":null,"finish_reason":`...)
	}
	if last {
		dst = append(dst, '"')
		dst = append(dst, j.finishReason()...)
		dst = append(dst, `","stop_reason":null}]}`...)
	} else {
		dst = append(dst, `null,"stop_reason":null}]}`...)
	}
	return dst
}
