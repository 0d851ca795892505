package faults

import (
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vllm-proxy/vllm-proxy/sim"
)

// canary is a loopback listener that counts every connection it accepts; the proxy must
// never connect to it.
type canary struct {
	ln    net.Listener
	conns atomic.Int64
	wg    sync.WaitGroup
}

func startCanary(t *testing.T) *canary {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &canary{ln: ln}
	c.wg.Go(func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			c.conns.Add(1)
			_ = conn.Close()
		}
	})
	t.Cleanup(func() { _ = ln.Close(); c.wg.Wait() })
	return c
}

// TestNoSteering: requests try to make the proxy connect somewhere other than its
// configured backend: absolute-URI request lines, CONNECT, Host and forwarding headers,
// paths that look like hosts, model names that are URLs or host:port, URL-ish body
// fields, and a batch whose lines name the canary. Expected: the canary listener accepts
// zero connections, no answer redirects the client off the proxy (a path-cleaning
// redirect's Location is a local path), the proxy keeps serving (a normal request
// afterwards is 200), and every request got an answer (no hang).
func TestNoSteering(t *testing.T) {
	t.Parallel()
	cn := startCanary(t)
	target := cn.ln.Addr().String()
	be := startSim(t, sim.Config{Instant: true})
	px, _ := startProxy(t, "proxy", proxyConfig{Backends: []string{be.URL()}}, "", nil, procOpts{})
	c := newClient(t)

	chatJSON := func(model, extra string) string {
		return fmt.Sprintf(`{"model":%q,"messages":[{"role":"user","content":"hi"}],"max_tokens":1%s}`, model, extra)
	}
	post := func(path, host, headers, body string) string {
		return fmt.Sprintf("POST %s HTTP/1.1\r\nHost: %s\r\n%sContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
			path, host, headers, len(body), body)
	}
	ok := chatJSON("m", "")
	cases := map[string]string{
		"absolute-URI POST":          post("http://"+target+"/v1/chat/completions", target, "", ok),
		"absolute-URI GET":           "GET http://" + target + "/v1/models HTTP/1.1\r\nHost: " + target + "\r\nConnection: close\r\n\r\n",
		"absolute-URI https":         post("https://"+target+"/v1/chat/completions", target, "", ok),
		"CONNECT":                    "CONNECT " + target + " HTTP/1.1\r\nHost: " + target + "\r\n\r\n",
		"Host header":                post("/v1/chat/completions", target, "", ok),
		"X-Forwarded-Host":           post("/v1/chat/completions", "x", "X-Forwarded-Host: "+target+"\r\nX-Forwarded-Proto: http\r\n", ok),
		"Forwarded":                  post("/v1/chat/completions", "x", "Forwarded: host="+target+";proto=http\r\n", ok),
		"X-Original-URL":             post("/v1/chat/completions", "x", "X-Original-URL: http://"+target+"/v1/chat/completions\r\nX-Rewrite-URL: http://"+target+"/\r\n", ok),
		"path //host":                post("//"+target+"/v1/chat/completions", "x", "", ok),
		"path with dot segments":     post("/v1/../../"+target+"/v1/chat/completions", "x", "", ok),
		"path escaped slashes":       post("/%2F%2F"+target+"/v1/chat/completions", "x", "", ok),
		"path with @":                post("/@"+target+"/v1/chat/completions", "x", "", ok),
		"model is a URL":             post("/v1/chat/completions", "x", "", chatJSON("http://"+target+"/v1", "")),
		"model is host:port":         post("/v1/chat/completions", "x", "", chatJSON(target, "")),
		"model is //host":            post("/v1/chat/completions", "x", "", chatJSON("//"+target, "")),
		"body base_url fields":       post("/v1/chat/completions", "x", "", chatJSON("m", `,"base_url":"http://`+target+`","api_base":"http://`+target+`","url":"http://`+target+`"`)),
		"upgrade to websocket":       "GET /v1/models HTTP/1.1\r\nHost: " + target + "\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
		"completions absolute-URI":   post("http://"+target+"/v1/completions", "x", "", `{"model":"m","prompt":"hi","max_tokens":1}`),
		"embeddings with URL model":  post("/v1/embeddings", "x", "", `{"model":"http://`+target+`","input":"hi"}`),
		"unknown path absolute-URI":  post("http://"+target+"/sim/control", target, "", `{}`),
		"Proxy-Authorization + Via":  post("/v1/chat/completions", target, "Proxy-Authorization: Basic eDp4\r\nVia: 1.1 "+target+"\r\n", ok),
		"absolute-URI with userinfo": post("http://u:p@"+target+"/v1/chat/completions", target, "", ok),
	}
	answers := map[string]string{}
	for name, req := range cases {
		start := time.Now()
		line, hdr := rawResponse(t, px.Addr, []byte(req))
		if time.Since(start) > 15*time.Second {
			t.Errorf("%s: no answer within 15s", name)
		}
		if loc := hdr.Get("Location"); loc != "" && (!strings.HasPrefix(loc, "/") || strings.HasPrefix(loc, "//") || strings.Contains(loc, "://")) {
			t.Errorf("%s: redirect to %q leaves the proxy", name, loc)
		}
		answers[name] = strings.TrimPrefix(line, "HTTP/1.1 ")
	}

	// A batch whose lines point at the canary.
	in := fmt.Sprintf(`{"custom_id":"a","method":"POST","url":"http://%s/v1/chat/completions","body":%s}`+"\n", target, ok) +
		fmt.Sprintf(`{"custom_id":"b","method":"POST","url":"/v1/chat/completions","body":%s}`+"\n", chatJSON("http://"+target+"/v1", ""))
	status, body := uploadFile(t, c, px.URL, "steer.jsonl", strings.NewReader(in))
	answers["batch upload naming the canary"] = fmt.Sprint(status)
	if status == 200 {
		var id struct{ ID string }
		_ = jsonUnmarshal(body, &id)
		job := createBatch(t, c, px.URL, id.ID)
		var b batchObj
		if !poll(30*time.Second, func() bool {
			b, _ = getBatch(t, c, px.URL, job.ID)
			return b.Status == "completed" || b.Status == "failed"
		}) {
			t.Errorf("batch naming the canary did not finish: %+v", b)
		}
		answers["batch naming the canary"] = b.Status
	}

	if r := chat(t.Context(), c, px.URL, []byte(ok)); !r.OK() {
		t.Errorf("normal request after the attempts: %d %v", r.Status, r.Err)
	}
	time.Sleep(200 * time.Millisecond) // a connection attempt in flight would land now
	if n := cn.conns.Load(); n != 0 {
		t.Errorf("the canary accepted %d connections", n)
	}
	for name, a := range answers {
		t.Logf("%-30s → %s", name, a)
	}
	result(t, "%d steering attempts (+ a batch): canary connections=%d", len(cases), cn.conns.Load())
}

// jsonUnmarshal is json.Unmarshal.
func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
