package faults

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"
)

// batchInput is a JSONL batch of n chat completions with custom ids req-0 … req-(n-1).
func batchInput(n, maxTokens int) []byte {
	var b bytes.Buffer
	for i := range n {
		fmt.Fprintf(&b, `{"custom_id":"req-%d","method":"POST","url":"/v1/chat/completions","body":{"model":"m","messages":[{"role":"user","content":"batch line %d"}],"max_tokens":%d}}`+"\n", i, i, maxTokens)
	}
	return b.Bytes()
}

// uploadFile posts content as a batch input file named name and returns the status
// and body of the answer.
func uploadFile(t *testing.T, c *http.Client, base, name string, content io.Reader) (int, []byte) {
	t.Helper()
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		err := mw.WriteField("purpose", "batch")
		if err == nil {
			var fw io.Writer
			if fw, err = mw.CreateFormFile("file", name); err == nil {
				if _, err = io.Copy(fw, content); err == nil {
					err = mw.Close()
				}
			}
		}
		pw.CloseWithError(err)
	}()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, base+"/v1/files", pr)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	resp, err := c.Do(req)
	if err != nil {
		_ = pr.CloseWithError(err)
		t.Fatalf("POST /v1/files: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// mustUpload uploads content and returns the file id, failing the test on any non-200.
func mustUpload(t *testing.T, c *http.Client, base string, content []byte) string {
	t.Helper()
	status, body := uploadFile(t, c, base, "input.jsonl", bytes.NewReader(content))
	if status != http.StatusOK {
		t.Fatalf("upload: %d %.300s", status, body)
	}
	var f struct{ ID string }
	if err := json.Unmarshal(body, &f); err != nil || f.ID == "" {
		t.Fatalf("upload answer %.300s: %v", body, err)
	}
	return f.ID
}

// batchObj is the part of a Batch object the tests read.
type batchObj struct {
	ID            string  `json:"id"`
	Status        string  `json:"status"`
	OutputFileID  *string `json:"output_file_id"`
	ErrorFileID   *string `json:"error_file_id"`
	RequestCounts struct {
		Total, Completed, Failed int64
	} `json:"request_counts"`
}

// doJSON sends method path with an optional JSON body and decodes a 200 answer into out.
func doJSON(t *testing.T, c *http.Client, method, url string, body string, out any) error {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s: %d %.300s", method, url, resp.StatusCode, b)
	}
	return json.Unmarshal(b, out)
}

// createBatch starts a batch over file id.
func createBatch(t *testing.T, c *http.Client, base, fileID string) batchObj {
	t.Helper()
	var b batchObj
	body := fmt.Sprintf(`{"input_file_id":%q,"endpoint":"/v1/chat/completions","completion_window":"24h"}`, fileID)
	if err := doJSON(t, c, http.MethodPost, base+"/v1/batches", body, &b); err != nil {
		t.Fatalf("creating batch: %v", err)
	}
	return b
}

// getBatch reads a batch; ok is false when the request failed.
func getBatch(t *testing.T, c *http.Client, base, id string) (batchObj, bool) {
	t.Helper()
	var b batchObj
	err := doJSON(t, c, http.MethodGet, base+"/v1/batches/"+id, "", &b)
	return b, err == nil
}

// fileContent downloads a file's content.
func fileContent(t *testing.T, c *http.Client, base, id string) []byte {
	t.Helper()
	resp, err := c.Get(base + "/v1/files/" + id + "/content")
	if err != nil {
		t.Fatalf("GET content of %s: %v", id, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET content of %s: %d %v %.300s", id, resp.StatusCode, err, b)
	}
	return b
}

// checkOutput asserts that out holds exactly one line per custom id req-0 … req-(n-1),
// each with response status 200, and returns the number of lines.
func checkOutput(t *testing.T, out []byte, n int) int {
	t.Helper()
	seen := map[string]int{}
	lines := 0
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		lines++
		var l struct {
			CustomID string `json:"custom_id"`
			Response struct {
				StatusCode int `json:"status_code"`
			} `json:"response"`
		}
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Errorf("output line %d is not JSON: %v", lines, err)
			continue
		}
		seen[l.CustomID]++
		if l.Response.StatusCode != http.StatusOK {
			t.Errorf("line %s has status %d", l.CustomID, l.Response.StatusCode)
		}
	}
	for i := range n {
		id := fmt.Sprintf("req-%d", i)
		if seen[id] != 1 {
			t.Errorf("custom_id %s appears %d times in the output", id, seen[id])
		}
		delete(seen, id)
	}
	for id := range seen {
		t.Errorf("unexpected custom_id %q in the output", id)
	}
	return lines
}
