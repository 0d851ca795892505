package sim

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"strconv"
)

func (s *Server) handleHealth(w http.ResponseWriter, _ *http.Request) {
	if !s.healthy.Load() || !s.ready() {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	w.WriteHeader(http.StatusOK)
}

func (s *Server) handleVersion(w http.ResponseWriter, _ *http.Request) {
	b := appendString([]byte(`{"version":`), s.cfg.Version)
	s.writeJSON(w, http.StatusOK, append(b, '}'))
}

func (s *Server) handleLoad(w http.ResponseWriter, _ *http.Request) {
	b := strconv.AppendInt([]byte(`{"server_load":`), s.load.Load(), 10)
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(append(b, '}')) // client gone; nothing to do
}

func (s *Server) handleModels(w http.ResponseWriter, _ *http.Request) {
	s.writeJSON(w, http.StatusOK, s.modelsJ)
}

// renderModels builds the /v1/models body once: the base model under each served name,
// then one entry per LoRA adapter whose parent is the first served name.
func (s *Server) renderModels() []byte {
	perm := func(b []byte) []byte {
		b = append(b, `,"permission":[{"id":"modelperm-sim","object":"model_permission","created":`...)
		b = strconv.AppendInt(b, s.created, 10)
		return append(b, `,"allow_create_engine":false,"allow_sampling":true,"allow_logprobs":true,"allow_search_indices":false,"allow_view":true,"allow_fine_tuning":false,"organization":"*","group":null,"is_blocking":false}]}`...)
	}
	entry := func(b []byte, id, root, parent string, maxLen bool) []byte {
		b = append(b, `{"id":`...)
		b = appendString(b, id)
		b = append(b, `,"object":"model","created":`...)
		b = strconv.AppendInt(b, s.created, 10)
		b = append(b, `,"owned_by":"vllm","root":`...)
		b = appendString(b, root)
		b = append(b, `,"parent":`...)
		if parent == "" {
			b = append(b, "null"...)
		} else {
			b = appendString(b, parent)
		}
		b = append(b, `,"max_model_len":`...)
		if maxLen {
			b = strconv.AppendInt(b, int64(s.cfg.MaxModelLen), 10)
		} else {
			b = append(b, "null"...)
		}
		return perm(b)
	}
	b := []byte(`{"object":"list","data":[`)
	for i, n := range s.cfg.ServedModelNames {
		if i > 0 {
			b = append(b, ',')
		}
		b = entry(b, n, s.cfg.Model, "", true)
	}
	for _, n := range s.cfg.LoRAs {
		b = append(b, ',')
		b = entry(b, n, "/adapters/"+n, s.cfg.ServedModelNames[0], false)
	}
	return append(b, "]}"...)
}

// handleControl reads or changes health and faults at runtime (only with Config.Control).
// The POST body may set any of "healthy", "fail_rate", "hang_rate", "drop_stream_after";
// absent fields keep their values. Both methods answer the resulting state.
func (s *Server) handleControl(w http.ResponseWriter, r *http.Request) {
	type state struct {
		Healthy *bool `json:"healthy,omitempty"`
		Faults
	}
	type patch struct {
		Healthy         *bool    `json:"healthy"`
		FailRate        *float64 `json:"fail_rate"`
		HangRate        *float64 `json:"hang_rate"`
		DropStreamAfter *int     `json:"drop_stream_after"`
	}
	if r.Method == http.MethodPost {
		var p patch
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&p); err != nil {
			s.writeError(w, apiError{Status: http.StatusBadRequest, Message: "invalid control body: " + err.Error()})
			return
		}
		f := s.Faults()
		if p.FailRate != nil {
			f.FailRate = *p.FailRate
		}
		if p.HangRate != nil {
			f.HangRate = *p.HangRate
		}
		if p.DropStreamAfter != nil {
			f.DropStreamAfter = *p.DropStreamAfter
		}
		if err := f.validate(); err != nil {
			s.writeError(w, apiError{Status: http.StatusBadRequest, Message: err.Error()})
			return
		}
		s.SetFaults(f)
		if p.Healthy != nil {
			s.SetHealthy(*p.Healthy)
		}
		s.log.InfoContext(r.Context(), "sim control applied", "healthy", s.healthy.Load(),
			"fail_rate", f.FailRate, "hang_rate", f.HangRate, "drop_stream_after", f.DropStreamAfter)
	}
	healthy := s.healthy.Load()
	body, err := json.Marshal(state{Healthy: &healthy, Faults: s.Faults()})
	if err != nil {
		s.writeError(w, apiError{Status: http.StatusInternalServerError, Message: "encoding control state"})
		return
	}
	s.writeJSON(w, http.StatusOK, body)
}

// handleEmbeddings answers deterministic unit vectors of EmbeddingDim floats (or the
// request's dimensions), one per input. Each input is a prefill-only sequence.
func (s *Server) handleEmbeddings(w http.ResponseWriter, r *http.Request) {
	s.load.Add(1)
	defer s.load.Add(-1)
	bb := getBuf()
	defer putBuf(bb)
	body, err := s.readBody(r, (*bb)[:0])
	*bb = body
	var req embeddingRequest
	if err == nil {
		err = decode(body, &req)
	}
	var inputs [][]byte
	if err == nil {
		inputs, err = parseTextInputs(req.Input, "input")
	}
	if err != nil {
		s.writeError(w, apiError{Status: http.StatusBadRequest, Message: err.Error()})
		return
	}
	s.counts.priority(req.Priority)
	model, lora, aerr := s.resolveModel(req.Model)
	if aerr != nil {
		s.writeError(w, *aerr)
		return
	}
	dim := s.cfg.EmbeddingDim
	if req.Dimensions != nil {
		if *req.Dimensions < 1 || *req.Dimensions > s.cfg.EmbeddingDim {
			s.writeError(w, apiError{Status: http.StatusBadRequest, Param: "dimensions",
				Message: "dimensions must be between 1 and " + strconv.Itoa(s.cfg.EmbeddingDim)})
			return
		}
		dim = *req.Dimensions
	}
	if req.EncodingFormat != "" && req.EncodingFormat != "float" && req.EncodingFormat != "base64" {
		s.writeError(w, apiError{Status: http.StatusBadRequest, Param: "encoding_format",
			Message: "encoding_format must be float or base64"})
		return
	}
	g := genRequest{Model: req.Model, Prompts: inputs, Priority: req.Priority, HasMax: true, MaxTokens: 1}
	if _, aerr := s.admit(&g); aerr != nil {
		s.writeError(w, *aerr)
		return
	}
	if s.injectFault(w, r) {
		return
	}
	j := &job{g: g, model: model, lora: lora, engine: s.pickEngine()}
	root := chainRoot("", lora)
	for _, p := range inputs {
		j.seqs = append(j.seqs, &seq{prompt: p, prompTok: countTokens(len(p)), root: root,
			priority: req.Priority, lora: lora, heapIndex: -1})
	}
	if s.cfg.Instant {
		s.runInstant(j)
	} else {
		defer func() {
			for _, q := range j.seqs {
				j.engine.abort(q)
			}
		}()
		for _, q := range j.seqs {
			q.notify = make(chan struct{}, 1)
			j.engine.submit(q)
		}
		for _, q := range j.seqs {
			if err := s.waitDone(r.Context(), q); err != nil {
				if errors.Is(err, ErrClosed) {
					abortResponse()
				}
				return
			}
		}
	}
	out := getBuf()
	defer putBuf(out)
	*out = s.appendEmbeddings((*out)[:0], j, dim, req.EncodingFormat == "base64")
	s.writeJSON(w, http.StatusOK, *out)
}

func (s *Server) appendEmbeddings(b []byte, j *job, dim int, b64 bool) []byte {
	vec := make([]float32, dim)
	raw := make([]byte, 4*dim)
	b = append(b, `{"id":"embd-`...)
	b = append(b, s.newID(kindCompletion)[len("cmpl-"):]...)
	b = append(b, `","object":"list","created":`...)
	b = strconv.AppendInt(b, s.created, 10)
	b = append(b, `,"model":`...)
	b = appendString(b, j.model)
	b = append(b, `,"data":[`...)
	prompt := 0
	for i, q := range j.seqs {
		prompt += q.prompTok
		embedding(vec, q.prompt)
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"index":`...)
		b = appendInt(b, i)
		b = append(b, `,"object":"embedding","embedding":`...)
		if b64 {
			for k, f := range vec {
				binary.LittleEndian.PutUint32(raw[4*k:], math.Float32bits(f))
			}
			b = append(b, '"')
			b = base64.StdEncoding.AppendEncode(b, raw)
			b = append(b, '"')
		} else {
			b = append(b, '[')
			for k, f := range vec {
				if k > 0 {
					b = append(b, ',')
				}
				b = strconv.AppendFloat(b, float64(f), 'g', -1, 32)
			}
			b = append(b, ']')
		}
		b = append(b, '}')
	}
	b = append(b, `],"usage":{"prompt_tokens":`...)
	b = appendInt(b, prompt)
	b = append(b, `,"total_tokens":`...)
	b = appendInt(b, prompt)
	return append(b, `,"completion_tokens":0,"prompt_tokens_details":null}}`...)
}
