package sim

import (
	"net/http"
	"strconv"
)

// handleTokenize answers vLLM's /tokenize: {"count","max_model_len","tokens","token_strs"}
// for a "prompt" string or chat "messages" (rendered like a chat request's prompt).
func (s *Server) handleTokenize(w http.ResponseWriter, r *http.Request) {
	bb := getBuf()
	defer putBuf(bb)
	body, err := s.readBody(r, (*bb)[:0])
	*bb = body
	var req tokenizeRequest
	if err == nil {
		err = decode(body, &req)
	}
	var text []byte
	if err == nil {
		switch {
		case req.Prompt != nil:
			text = []byte(*req.Prompt)
		case req.Messages != nil:
			text, err = appendChatPrompt(nil, req.Messages)
		default:
			err = badRequest("either prompt or messages is required")
		}
	}
	if err != nil {
		s.writeError(w, apiError{Status: http.StatusBadRequest, Message: err.Error()})
		return
	}
	if _, _, aerr := s.resolveModel(req.Model); aerr != nil {
		s.writeError(w, *aerr)
		return
	}
	ids := tokenIDs(nil, string(text))
	b := []byte(`{"count":`)
	b = appendInt(b, len(ids))
	b = append(b, `,"max_model_len":`...)
	b = appendInt(b, s.cfg.MaxModelLen)
	b = append(b, `,"tokens":[`...)
	for i, id := range ids {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, id, 10)
	}
	b = append(b, `],"token_strs":null}`...)
	s.writeJSON(w, http.StatusOK, b)
}

// handleDetokenize answers vLLM's /detokenize: {"prompt": text} for "tokens".
func (s *Server) handleDetokenize(w http.ResponseWriter, r *http.Request) {
	bb := getBuf()
	defer putBuf(bb)
	body, err := s.readBody(r, (*bb)[:0])
	*bb = body
	var req tokenizeRequest
	if err == nil {
		err = decode(body, &req)
	}
	if err == nil && req.Tokens == nil {
		err = badRequest("field required: tokens")
	}
	if err != nil {
		s.writeError(w, apiError{Status: http.StatusBadRequest, Message: err.Error()})
		return
	}
	if _, _, aerr := s.resolveModel(req.Model); aerr != nil {
		s.writeError(w, *aerr)
		return
	}
	for _, id := range req.Tokens {
		if id < 0 || id > 1<<32-1 {
			s.writeError(w, apiError{Status: http.StatusBadRequest, Param: "tokens",
				Message: "token id " + strconv.FormatInt(id, 10) + " is out of vocabulary"})
			return
		}
	}
	b := []byte(`{"prompt":`)
	b = appendString(b, appendDetokenized(nil, req.Tokens))
	s.writeJSON(w, http.StatusOK, append(b, '}'))
}
