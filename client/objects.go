package client

// File is an OpenAI File object as the proxy returns it.
type File struct {
	ID        string `json:"id"`
	Bytes     int64  `json:"bytes"`
	CreatedAt int64  `json:"created_at"`
	ExpiresAt *int64 `json:"expires_at"`
	Filename  string `json:"filename"`
	Purpose   string `json:"purpose"`
	Status    string `json:"status"`
}

// RequestCounts are a batch's line counts.
type RequestCounts struct {
	Total     int64 `json:"total"`
	Completed int64 `json:"completed"`
	Failed    int64 `json:"failed"`
}

// Done is the number of lines finished either way.
func (r RequestCounts) Done() int64 { return r.Completed + r.Failed }

// BatchError is one entry of a batch's errors (validation failures, with their line).
type BatchError struct {
	Code    string  `json:"code"`
	Message string  `json:"message"`
	Param   *string `json:"param"`
	Line    *int64  `json:"line"`
}

// Batch is an OpenAI Batch object as the proxy returns it.
type Batch struct {
	ID               string        `json:"id"`
	Endpoint         string        `json:"endpoint"`
	InputFileID      string        `json:"input_file_id"`
	CompletionWindow string        `json:"completion_window"`
	Status           string        `json:"status"`
	OutputFileID     *string       `json:"output_file_id"`
	ErrorFileID      *string       `json:"error_file_id"`
	CreatedAt        int64         `json:"created_at"`
	InProgressAt     *int64        `json:"in_progress_at"`
	ExpiresAt        *int64        `json:"expires_at"`
	CompletedAt      *int64        `json:"completed_at"`
	FailedAt         *int64        `json:"failed_at"`
	CancelledAt      *int64        `json:"cancelled_at"`
	RequestCounts    RequestCounts `json:"request_counts"`
	Errors           *struct {
		Data []BatchError `json:"data"`
	} `json:"errors"`
	Metadata map[string]string `json:"metadata"`
}

// Terminal reports whether the batch's status is final: completed, failed, expired or
// cancelled.
func (b Batch) Terminal() bool {
	switch b.Status {
	case "completed", "failed", "expired", "cancelled":
		return true
	}
	return false
}

// BatchRequest is the body of POST /v1/batches.
type BatchRequest struct {
	InputFileID      string            `json:"input_file_id"`
	Endpoint         string            `json:"endpoint"`
	CompletionWindow string            `json:"completion_window"`
	Metadata         map[string]string `json:"metadata,omitempty"`
}

// LoadStats is the proxy's GET /load-stats.
type LoadStats struct {
	Policy   string         `json:"policy"`
	Backends []BackendStats `json:"backends"`
}

// BackendStats is one backend of LoadStats; see routing.BackendStats for the meaning
// of each field.
type BackendStats struct {
	URL                         string           `json:"url"`
	Healthy                     bool             `json:"healthy"`
	Models                      []string         `json:"models"`
	Running                     float64          `json:"running"`
	Waiting                     float64          `json:"waiting"`
	InFlight                    int64            `json:"in_flight"`
	InFlightByClass             map[string]int64 `json:"in_flight_by_class"`
	Capacity                    int              `json:"capacity"`
	Load                        float64          `json:"load"`
	KVCacheUsage                float64          `json:"kv_cache_usage"`
	PrefixCacheHitRate          float64          `json:"prefix_cache_hit_rate"`
	PredictedPrefixCacheHitRate *float64         `json:"predicted_prefix_cache_hit_rate"`
	MetricsAgeMS                int64            `json:"metrics_age_ms"`
	MetricsStale                bool             `json:"metrics_stale"`
	Engines                     int              `json:"engines"`
}
