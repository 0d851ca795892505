package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"mime/multipart"
	"net/http"
	"time"

	"github.com/vllm-proxy/vllm-proxy/batch"
	"github.com/vllm-proxy/vllm-proxy/proxy"
	"github.com/vllm-proxy/vllm-proxy/routing"
)

// With -batch-api the batch goes the way a client's does: a JSONL file uploaded to
// /v1/files, a batch created on /v1/batches, and the replicas' batch workers (batch.New,
// as cmd builds them) executing its lines through the proxy. Otherwise batchLoad sends
// lines through proxy.Handler.Dispatch directly.

// dispatcher is cmd's batch.Dispatcher in short: the proxy's in-process path, class
// batch; failures to get an answer are retried later.
type dispatcher struct{ h *proxy.Handler }

func (d dispatcher) Dispatch(ctx context.Context, req batch.Request) (batch.Response, error) {
	resp, err := d.h.Dispatch(ctx, proxy.DispatchRequest{Path: req.Path, Body: req.Body, Class: routing.ClassBatch})
	if err != nil {
		if ctx.Err() != nil {
			return batch.Response{}, fmt.Errorf("dispatching a batch line: %w", err)
		}
		status, body := proxy.ErrorResponse(err)
		return batch.Response{Status: status, Body: body}, fmt.Errorf("%w: %w", batch.ErrRetryable, err)
	}
	return batch.Response{Status: resp.Status, Body: resp.Body}, nil
}

// batchFile is a JSONL batch input of n chat lines of shape sh.
func batchFile(sh shape, n int, seed uint64) []byte {
	rnd := rand.New(rand.NewPCG(seed, 99))
	var b bytes.Buffer
	for i := range n {
		line, _ := json.Marshal(map[string]any{
			"custom_id": fmt.Sprintf("line-%d", i), "method": "POST", "url": "/v1/chat/completions",
			"body": json.RawMessage(sh.body(rnd, false)),
		})
		b.Write(line)
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// batchViaAPI uploads a batch of lines lines to base, creates the batch, and polls its
// completed count until ctx ends; each line completed is returned as a batchDone at the
// poll that saw it. The batch is cancelled at the end, so the next run starts idle.
func batchViaAPI(ctx context.Context, client *http.Client, base string, sh shape, lines int, seed uint64, start time.Time) ([]batchDone, error) {
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	_ = mw.WriteField("purpose", "batch")
	fw, _ := mw.CreateFormFile("file", "bench.jsonl")
	_, _ = fw.Write(batchFile(sh, lines, seed))
	_ = mw.Close()
	var file struct {
		ID string `json:"id"`
	}
	if err := call(ctx, client, http.MethodPost, base+"/v1/files", mw.FormDataContentType(), body.Bytes(), &file); err != nil {
		return nil, fmt.Errorf("uploading the batch file: %w", err)
	}
	req, _ := json.Marshal(map[string]string{"input_file_id": file.ID, "endpoint": "/v1/chat/completions", "completion_window": "24h"})
	var b struct {
		ID            string `json:"id"`
		Status        string `json:"status"`
		RequestCounts struct {
			Completed int `json:"completed"`
			Failed    int `json:"failed"`
		} `json:"request_counts"`
	}
	if err := call(ctx, client, http.MethodPost, base+"/v1/batches", "application/json", req, &b); err != nil {
		return nil, fmt.Errorf("creating the batch: %w", err)
	}
	defer func() { // cancel, so its lines in flight stop before the next run
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		_ = call(cctx, client, http.MethodPost, base+"/v1/batches/"+b.ID+"/cancel", "application/json", nil, nil)
	}()
	var out []batchDone
	seen := 0
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return out, nil
		case <-t.C:
		}
		if err := call(ctx, client, http.MethodGet, base+"/v1/batches/"+b.ID, "", nil, &b); err != nil {
			if ctx.Err() != nil {
				return out, nil
			}
			return out, fmt.Errorf("polling the batch: %w", err)
		}
		if b.RequestCounts.Failed > 0 {
			return out, fmt.Errorf("batch %s: %d lines failed", b.ID, b.RequestCounts.Failed)
		}
		switch b.Status {
		case "completed":
			return out, errors.New("the batch finished before the run: raise its lines")
		case "failed", "expired", "cancelling", "cancelled":
			return out, fmt.Errorf("batch %s is %s", b.ID, b.Status)
		}
		for ; seen < b.RequestCounts.Completed; seen++ {
			out = append(out, batchDone{at: time.Since(start), tokens: sh.maxTokens})
		}
	}
}

// call sends one API request and decodes a 2xx answer into out (when not nil).
func call(ctx context.Context, client *http.Client, method, url, ctype string, body []byte, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var raw bytes.Buffer
	_, _ = raw.ReadFrom(resp.Body)
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %d %s", method, url, resp.StatusCode, raw.String())
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(raw.Bytes(), out)
}
