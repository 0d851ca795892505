package sim

import (
	"net/http"
	"strconv"
)

// writeJSON writes body with status and counts the status.
func (s *Server) writeJSON(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h["Content-Type"] = []string{"application/json"}
	h["Content-Length"] = []string{itoa(len(body))}
	w.WriteHeader(status)
	_, _ = w.Write(body) // a failed write means the client left; nothing to do
	s.counts.status(status)
}

// writeError writes an OpenAI-shaped error.
func (s *Server) writeError(w http.ResponseWriter, e apiError) {
	b := getBuf()
	defer putBuf(b)
	*b = appendError((*b)[:0], e)
	s.writeJSON(w, e.Status, *b)
}

func itoa(n int) string { return strconv.Itoa(n) }

// writeResult writes the non-streamed response of a finished job.
func (s *Server) writeResult(w http.ResponseWriter, j *job) {
	b := getBuf()
	defer putBuf(b)
	out := (*b)[:0]
	switch j.kind {
	case kindChat:
		out = j.appendChat(out)
	case kindCompletion:
		out = j.appendCompletion(out)
	case kindResponses:
		out = j.appendResponse(out)
	}
	*b = out
	s.writeJSON(w, http.StatusOK, out)
}

func (j *job) appendHead(dst []byte, object string) []byte {
	dst = append(dst, `{"id":`...)
	dst = appendString(dst, j.id)
	dst = append(dst, `,"object":"`...)
	dst = append(dst, object...)
	dst = append(dst, `","created":`...)
	dst = appendInt(dst, int(j.created))
	dst = append(dst, `,"model":`...)
	return appendString(dst, j.model)
}

// appendOutputText appends q's generated text as a JSON string. The vocabulary is plain
// ASCII without characters that need escaping, so no escaping pass is needed.
func appendOutputText(dst []byte, q *seq, from, to int) []byte {
	dst = append(dst, '"')
	dst = appendOutput(dst, q.seed, from, to)
	return append(dst, '"')
}

func (j *job) appendChat(dst []byte) []byte {
	q := j.seqs[0]
	dst = j.appendHead(dst, "chat.completion")
	dst = append(dst, `,"choices":[{"index":0,"message":{"role":"assistant","content":`...)
	dst = appendOutputText(dst, q, 0, int(q.generated.Load()))
	dst = append(dst, `,"refusal":null,"annotations":null,"audio":null,"function_call":null,"tool_calls":[],"reasoning_content":null},"logprobs":null,"finish_reason":"`...)
	dst = append(dst, j.finishReason()...)
	dst = append(dst, `","stop_reason":null}],"service_tier":null,"system_fingerprint":null,"usage":`...)
	dst = j.appendUsage(dst)
	return append(dst, `,"prompt_logprobs":null,"kv_transfer_params":null}`...)
}

func (j *job) appendCompletion(dst []byte) []byte {
	dst = j.appendHead(dst, "text_completion")
	dst = append(dst, `,"choices":[`...)
	for i, q := range j.seqs {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"index":`...)
		dst = appendInt(dst, i)
		dst = append(dst, `,"text":`...)
		dst = appendOutputText(dst, q, 0, int(q.generated.Load()))
		dst = append(dst, `,"logprobs":null,"finish_reason":"`...)
		dst = append(dst, j.finishReason()...)
		dst = append(dst, `","stop_reason":null,"prompt_logprobs":null}`...)
	}
	dst = append(dst, `],"service_tier":null,"system_fingerprint":null,"usage":`...)
	dst = j.appendUsage(dst)
	return append(dst, `,"kv_transfer_params":null}`...)
}

func (j *job) appendResponse(dst []byte) []byte {
	q := j.seqs[0]
	prompt, completion, cached := j.usage()
	dst = append(dst, `{"id":`...)
	dst = appendString(dst, j.id)
	dst = append(dst, `,"object":"response","created_at":`...)
	dst = appendInt(dst, int(j.created))
	dst = append(dst, `,"model":`...)
	dst = appendString(dst, j.model)
	dst = append(dst, `,"status":"completed","error":null,"incomplete_details":null,"instructions":null,"metadata":{},"parallel_tool_calls":true,"temperature":1.0,"tool_choice":"auto","tools":[],"top_p":1.0,"output":[{"type":"message","id":"msg_`...)
	dst = append(dst, j.id[len("resp_"):]...)
	dst = append(dst, `","status":"completed","role":"assistant","content":[{"type":"output_text","text":`...)
	dst = appendOutputText(dst, q, 0, int(q.generated.Load()))
	dst = append(dst, `,"annotations":[]}]}],"usage":{"input_tokens":`...)
	dst = appendInt(dst, prompt)
	dst = append(dst, `,"input_tokens_details":{"cached_tokens":`...)
	dst = appendInt(dst, cached)
	dst = append(dst, `},"output_tokens":`...)
	dst = appendInt(dst, completion)
	dst = append(dst, `,"output_tokens_details":{"reasoning_tokens":0},"total_tokens":`...)
	dst = appendInt(dst, prompt+completion)
	return append(dst, `}}`...)
}
