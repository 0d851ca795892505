package client

import (
	"context"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"strconv"
)

// UploadFile uploads content as a file named name with purpose "batch" (POST /v1/files,
// multipart, streamed). Only ctx bounds it: large files may take long.
func (c *Client) UploadFile(ctx context.Context, name string, content io.Reader) (File, error) {
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	done := make(chan struct{})
	go func() { // owned by this call, which waits for it below
		defer close(done)
		err := mw.WriteField("purpose", "batch")
		if err == nil {
			var part io.Writer
			if part, err = mw.CreateFormFile("file", name); err == nil {
				_, err = io.Copy(part, content)
			}
		}
		if err == nil {
			err = mw.Close()
		}
		pw.CloseWithError(err)
	}()
	resp, err := c.request(ctx, http.MethodPost, "/v1/files", mw.FormDataContentType(), pr)
	_ = pr.CloseWithError(io.ErrClosedPipe) // unblocks the writer if the request stopped reading
	<-done
	if err != nil {
		return File{}, fmt.Errorf("uploading %s: %w", name, err)
	}
	defer resp.Body.Close()
	var f File
	if err := decodeBody(resp, &f); err != nil {
		return File{}, fmt.Errorf("uploading %s: %w", name, err)
	}
	return f, nil
}

// ListFiles returns every file, newest first, following has_more.
func (c *Client) ListFiles(ctx context.Context) ([]File, error) {
	var all []File
	after := ""
	for {
		q := url.Values{"limit": {"10000"}}
		if after != "" {
			q.Set("after", after)
		}
		var page struct {
			Data    []File `json:"data"`
			HasMore bool   `json:"has_more"`
		}
		if err := c.doJSON(ctx, http.MethodGet, "/v1/files?"+q.Encode(), nil, &page); err != nil {
			return nil, err
		}
		all = append(all, page.Data...)
		if !page.HasMore || len(page.Data) == 0 {
			return all, nil
		}
		after = page.Data[len(page.Data)-1].ID
	}
}

// DeleteFile deletes file id; a missing file is an error wrapping ErrNotFound.
func (c *Client) DeleteFile(ctx context.Context, id string) error {
	var out struct {
		Deleted bool `json:"deleted"`
	}
	if err := c.doJSON(ctx, http.MethodDelete, "/v1/files/"+url.PathEscape(id), nil, &out); err != nil {
		return err
	}
	if !out.Deleted {
		return fmt.Errorf("deleting file %s: the proxy answered deleted=false", id)
	}
	return nil
}

// DownloadFile copies file id's content to w and returns the bytes written. Only ctx
// bounds it.
func (c *Client) DownloadFile(ctx context.Context, id string, w io.Writer) (int64, error) {
	resp, err := c.request(ctx, http.MethodGet, "/v1/files/"+url.PathEscape(id)+"/content", "", nil)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	n, err := io.Copy(w, resp.Body)
	if err != nil {
		return n, fmt.Errorf("downloading file %s: %w", id, err)
	}
	return n, nil
}

// CreateBatch creates a batch (POST /v1/batches).
func (c *Client) CreateBatch(ctx context.Context, req BatchRequest) (Batch, error) {
	var b Batch
	err := c.doJSON(ctx, http.MethodPost, "/v1/batches", req, &b)
	return b, err
}

// GetBatch returns batch id; a missing batch is an error wrapping ErrNotFound.
func (c *Client) GetBatch(ctx context.Context, id string) (Batch, error) {
	var b Batch
	err := c.doJSON(ctx, http.MethodGet, "/v1/batches/"+url.PathEscape(id), nil, &b)
	return b, err
}

// CancelBatch asks to cancel batch id and returns it as it is then (cancelling).
func (c *Client) CancelBatch(ctx context.Context, id string) (Batch, error) {
	var b Batch
	err := c.doJSON(ctx, http.MethodPost, "/v1/batches/"+url.PathEscape(id)+"/cancel", nil, &b)
	return b, err
}

// ListBatches returns up to limit batches, newest first, following has_more.
func (c *Client) ListBatches(ctx context.Context, limit int) ([]Batch, error) {
	var all []Batch
	after := ""
	for len(all) < limit {
		q := url.Values{"limit": {strconv.Itoa(min(100, limit-len(all)))}}
		if after != "" {
			q.Set("after", after)
		}
		var page struct {
			Data    []Batch `json:"data"`
			HasMore bool    `json:"has_more"`
		}
		if err := c.doJSON(ctx, http.MethodGet, "/v1/batches?"+q.Encode(), nil, &page); err != nil {
			return nil, err
		}
		all = append(all, page.Data...)
		if !page.HasMore || len(page.Data) == 0 {
			break
		}
		after = page.Data[len(page.Data)-1].ID
	}
	return all, nil
}

// LoadStats returns the proxy's GET /load-stats.
func (c *Client) LoadStats(ctx context.Context) (LoadStats, error) {
	var s LoadStats
	err := c.doJSON(ctx, http.MethodGet, "/load-stats", nil, &s)
	return s, err
}
