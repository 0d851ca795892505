package batch

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/vllm-proxy/vllm-proxy/state"
)

// maxValidationErrors is how many bad lines are reported before validation stops.
const maxValidationErrors = 100

// validationLimits bound what validateInput accepts.
type validationLimits struct {
	maxLines     int
	maxLineBytes int
	chunkLines   int
}

// lineReader reads physical lines with their byte offsets, refusing (but skipping) lines
// longer than max without holding them.
type lineReader struct {
	br  *bufio.Reader
	off int64
	max int
	buf []byte
}

// next returns the next line without its newline, its offset and total length (newline
// included); tooLong is set when the line exceeded max (line is then nil).
func (l *lineReader) next() (line []byte, off, n int64, tooLong bool, err error) {
	l.buf = l.buf[:0]
	off = l.off
	for {
		frag, err := l.br.ReadSlice('\n')
		n += int64(len(frag))
		if !tooLong {
			if len(l.buf)+len(frag) > l.max+1 { // +1: the newline
				tooLong, l.buf = true, l.buf[:0]
			} else {
				l.buf = append(l.buf, frag...)
			}
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		l.off += n
		if err != nil && (!errors.Is(err, io.EOF) || n == 0) {
			return nil, off, n, tooLong, err
		}
		if tooLong {
			return nil, off, n, true, nil
		}
		return bytes.TrimRight(l.buf, "\r\n"), off, n, false, nil
	}
}

// validateInput streams a batch input file and checks every line (see the spec's
// "Decisions"): JSON object, custom_id string and unique, method POST, url = endpoint,
// body an object without stream:true, at most maxLines tasks. It returns the chunk table
// when the file is valid, or up to maxValidationErrors errors with 1-based line numbers.
// err is only for I/O failures.
func validateInput(r io.Reader, endpoint string, lim validationLimits) (state.BatchValidated, []state.BatchError, error) {
	lr := &lineReader{br: bufio.NewReaderSize(r, 64<<10), max: lim.maxLineBytes}
	var (
		v        state.BatchValidated
		errs     []state.BatchError
		seen     = map[string]int64{}
		blanks   []int64 // blank lines not yet followed by a task line
		models   = map[string]bool{}
		noModel  bool
		inputs   int64
		cur      *state.JobChunk
		physical int64
	)
	add := func(line int64, code, param, msg string) bool {
		errs = append(errs, state.BatchError{Code: code, Message: msg, Param: param, Line: line})
		return len(errs) < maxValidationErrors
	}
	for {
		line, off, n, tooLong, err := lr.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return v, nil, fmt.Errorf("reading input file: %w", err)
		}
		physical++
		if !tooLong && len(bytes.TrimSpace(line)) == 0 {
			blanks = append(blanks, physical)
			continue
		}
		for _, b := range blanks { // a blank line before a task line is an error
			if !add(b, "invalid_json_line", "", "This line is not parseable as valid JSON.") {
				return v, errs, nil
			}
		}
		blanks = blanks[:0]
		if int64(v.Total) >= int64(lim.maxLines) {
			add(physical, "too_many_tasks", "", "The batch input file has more than "+strconv.Itoa(lim.maxLines)+" requests.")
			return v, errs, nil
		}
		v.Total++
		if cur == nil || cur.N >= int64(lim.chunkLines) {
			v.Chunks = append(v.Chunks, state.JobChunk{Index: int64(len(v.Chunks)), Offset: off, First: v.Total - 1})
			cur = &v.Chunks[len(v.Chunks)-1]
		}
		cur.N++
		cur.Length = off + n - cur.Offset
		if tooLong {
			if !add(physical, "invalid_json_line", "", "This line is longer than "+strconv.Itoa(lim.maxLineBytes)+" bytes.") {
				return v, errs, nil
			}
			continue
		}
		code, param, msg, model, nin := checkLine(line, endpoint, seen, physical)
		if code != "" {
			if !add(physical, code, param, msg) {
				return v, errs, nil
			}
			continue
		}
		if model == "" {
			noModel = true
		} else {
			models[model] = true
		}
		inputs += nin
		if endpoint == "/v1/embeddings" && inputs > int64(lim.maxLines) {
			add(physical, "too_many_tasks", "body.input", "The batch has more than "+strconv.Itoa(lim.maxLines)+" embedding inputs.")
			return v, errs, nil
		}
	}
	if v.Total == 0 && len(errs) == 0 {
		errs = append(errs, state.BatchError{Code: "empty_file", Message: "The batch input file is empty."})
	}
	if len(models) == 1 && !noModel {
		for m := range models {
			v.Model = m
		}
	}
	return v, errs, nil
}

// checkLine validates one non-blank line; code "" means valid. The line is checked with
// json.Valid once and then only scanned (see objectFields): encoding/json's decoders
// would run over the ~4 KB body several times.
func checkLine(line []byte, endpoint string, seen map[string]int64, physical int64) (code, param, msg, model string, inputs int64) {
	if !json.Valid(line) {
		return "invalid_json_line", "", "This line is not parseable as valid JSON.", "", 0
	}
	in, ok := scanTaskLine(line)
	if !ok {
		return "invalid_json_line", "", "This line is not parseable as valid JSON.", "", 0
	}
	id, ok := jsonString(in.customID)
	if !ok || id == "" {
		return "invalid_json_line", "custom_id", "custom_id must be a non-empty string.", "", 0
	}
	if first, dup := seen[id]; dup {
		return "duplicate_custom_id", "custom_id", "The custom_id " + strconv.Quote(id) + " is already used on line " + strconv.FormatInt(first, 10) + ".", "", 0
	}
	seen[id] = physical
	if method, ok := jsonString(in.method); !ok || method != "POST" {
		return "invalid_method", "method", "method must be \"POST\".", "", 0
	}
	if url, ok := jsonString(in.url); !ok || url != endpoint {
		return "url_mismatch", "url", "url must equal the batch endpoint " + endpoint + ".", "", 0
	}
	body, ok := scanBody(in.body)
	if !ok {
		return "invalid_json_line", "body", "body must be a JSON object.", "", 0
	}
	if bytes.Equal(body.stream, []byte("true")) {
		return "stream_not_supported", "body.stream", "Streaming is not supported in batches.", "", 0
	}
	if body.model != nil && !bytes.Equal(body.model, []byte("null")) {
		if model, ok = jsonString(body.model); !ok {
			return "invalid_json_line", "body.model", "body.model must be a string.", "", 0
		}
	}
	return "", "", "", model, embeddingInputs(body.input)
}

// embeddingInputs counts an embeddings input: each element of an array of strings or of
// token arrays, one for a string or a single token array.
func embeddingInputs(raw json.RawMessage) int64 {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '[' {
		return 1
	}
	var elems []json.RawMessage
	if json.Unmarshal(raw, &elems) != nil || len(elems) == 0 {
		return 1
	}
	if e := bytes.TrimSpace(elems[0]); len(e) > 0 && (e[0] == '"' || e[0] == '[') {
		return int64(len(elems))
	}
	return 1
}
