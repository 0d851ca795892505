package batch

import "github.com/vllm-proxy/vllm-proxy/state"

// fileObject is the OpenAI File object.
type fileObject struct {
	ID            string  `json:"id"`
	Object        string  `json:"object"`
	Bytes         int64   `json:"bytes"`
	CreatedAt     int64   `json:"created_at"`
	ExpiresAt     *int64  `json:"expires_at"`
	Filename      string  `json:"filename"`
	Purpose       string  `json:"purpose"`
	Status        string  `json:"status"`
	StatusDetails *string `json:"status_details"`
}

func toFileObject(f state.FileRecord) fileObject {
	return fileObject{ID: f.ID, Object: "file", Bytes: f.Bytes, CreatedAt: f.CreatedAt,
		ExpiresAt: ts(f.ExpiresAt), Filename: f.Filename, Purpose: f.Purpose, Status: f.Status}
}

// listObject is an OpenAI cursor page; every key is always present.
type listObject[T any] struct {
	Object  string  `json:"object"`
	Data    []T     `json:"data"`
	FirstID *string `json:"first_id"`
	LastID  *string `json:"last_id"`
	HasMore bool    `json:"has_more"`
}

func newList[T any](data []T, id func(T) string, more bool) listObject[T] {
	l := listObject[T]{Object: "list", Data: data, HasMore: more}
	if l.Data == nil {
		l.Data = []T{}
	}
	if len(data) > 0 {
		f, la := id(data[0]), id(data[len(data)-1])
		l.FirstID, l.LastID = &f, &la
	}
	return l
}

type requestCounts struct {
	Total     int64 `json:"total"`
	Completed int64 `json:"completed"`
	Failed    int64 `json:"failed"`
}

type batchErrors struct {
	Object string            `json:"object"`
	Data   []batchErrorEntry `json:"data"`
}

type batchErrorEntry struct {
	Code    string  `json:"code"`
	Message string  `json:"message"`
	Param   *string `json:"param"`
	Line    *int64  `json:"line"`
}

type batchUsage struct {
	InputTokens        int64 `json:"input_tokens"`
	InputTokensDetails struct {
		CachedTokens int64 `json:"cached_tokens"`
	} `json:"input_tokens_details"`
	OutputTokens        int64 `json:"output_tokens"`
	OutputTokensDetails struct {
		ReasoningTokens int64 `json:"reasoning_tokens"`
	} `json:"output_tokens_details"`
	TotalTokens int64 `json:"total_tokens"`
}

// batchObject is the OpenAI Batch object: every key present, null when unset.
type batchObject struct {
	ID               string            `json:"id"`
	Object           string            `json:"object"`
	Endpoint         string            `json:"endpoint"`
	Model            *string           `json:"model"`
	Errors           *batchErrors      `json:"errors"`
	InputFileID      string            `json:"input_file_id"`
	CompletionWindow string            `json:"completion_window"`
	Status           string            `json:"status"`
	OutputFileID     *string           `json:"output_file_id"`
	ErrorFileID      *string           `json:"error_file_id"`
	CreatedAt        int64             `json:"created_at"`
	InProgressAt     *int64            `json:"in_progress_at"`
	ExpiresAt        *int64            `json:"expires_at"`
	FinalizingAt     *int64            `json:"finalizing_at"`
	CompletedAt      *int64            `json:"completed_at"`
	FailedAt         *int64            `json:"failed_at"`
	ExpiredAt        *int64            `json:"expired_at"`
	CancellingAt     *int64            `json:"cancelling_at"`
	CancelledAt      *int64            `json:"cancelled_at"`
	RequestCounts    requestCounts     `json:"request_counts"`
	Metadata         map[string]string `json:"metadata"`
	Usage            *batchUsage       `json:"usage"`
}

func ts(v int64) *int64 {
	if v == 0 {
		return nil
	}
	return &v
}

func toBatchObject(r state.BatchRecord) batchObject {
	o := batchObject{
		ID: r.ID, Object: "batch", Endpoint: r.Endpoint, Model: nullable(r.Model),
		InputFileID: r.InputFileID, CompletionWindow: r.CompletionWindow, Status: string(r.Status),
		OutputFileID: nullable(r.OutputFileID), ErrorFileID: nullable(r.ErrorFileID),
		CreatedAt: r.CreatedAt, InProgressAt: ts(r.InProgressAt), ExpiresAt: ts(r.ExpiresAt),
		FinalizingAt: ts(r.FinalizingAt), CompletedAt: ts(r.CompletedAt), FailedAt: ts(r.FailedAt),
		ExpiredAt: ts(r.ExpiredAt), CancellingAt: ts(r.CancellingAt), CancelledAt: ts(r.CancelledAt),
		RequestCounts: requestCounts{Total: r.Total, Completed: r.Completed, Failed: r.Failed},
		Metadata:      r.Metadata,
	}
	if len(r.Errors) > 0 {
		e := &batchErrors{Object: "list"}
		for _, be := range r.Errors {
			e.Data = append(e.Data, batchErrorEntry{Code: be.Code, Message: be.Message, Param: nullable(be.Param), Line: ts(be.Line)})
		}
		o.Errors = e
	}
	u := &batchUsage{InputTokens: r.Usage.InputTokens, OutputTokens: r.Usage.OutputTokens, TotalTokens: r.Usage.TotalTokens}
	u.InputTokensDetails.CachedTokens = r.Usage.CachedTokens
	u.OutputTokensDetails.ReasoningTokens = r.Usage.ReasoningTokens
	o.Usage = u
	return o
}
