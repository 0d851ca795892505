package batch

import (
	"log/slog"
	"net/http"
	"strconv"

	"github.com/vllm-proxy/vllm-proxy/state"
)

// API is the http.Handler for /v1/files* and /v1/batches*. It keeps no state of its own:
// any replica's API serves any batch. Safe for concurrent use.
type API struct {
	cfg   Config
	jobs  state.JobStore
	blobs BlobStore
	log   *slog.Logger
	m     *Metrics
	mux   *http.ServeMux
	ids   idGen
}

func newAPI(cfg Config, jobs state.JobStore, blobs BlobStore, log *slog.Logger, m *Metrics) *API {
	a := &API{cfg: cfg, jobs: jobs, blobs: blobs, log: log, m: m, mux: http.NewServeMux()}
	a.mux.HandleFunc("POST /v1/files", a.createFile)
	a.mux.HandleFunc("GET /v1/files", a.listFiles)
	a.mux.HandleFunc("GET /v1/files/{id}", a.getFile)
	a.mux.HandleFunc("DELETE /v1/files/{id}", a.deleteFile)
	a.mux.HandleFunc("GET /v1/files/{id}/content", a.fileContent)
	a.mux.HandleFunc("POST /v1/batches", a.createBatch)
	a.mux.HandleFunc("GET /v1/batches", a.listBatches)
	a.mux.HandleFunc("GET /v1/batches/{id}", a.getBatch)
	a.mux.HandleFunc("POST /v1/batches/{id}/cancel", a.cancelBatch)
	a.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, r, a.log, &apiError{status: http.StatusNotFound, typ: "invalid_request_error",
			msg: "Unknown request URL: " + r.Method + " " + r.URL.Path + "."})
	})
	return a
}

// ServeHTTP serves the Files and Batches endpoints.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.mux.ServeHTTP(w, r) }

// queryLimit parses ?limit= within [1, max], defaulting to def.
func queryLimit(r *http.Request, def, max int) (int, error) {
	s := r.URL.Query().Get("limit")
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > max {
		return 0, badRequest("limit", "limit must be an integer between 1 and "+strconv.Itoa(max)+".")
	}
	return n, nil
}
