package faults

import (
	"bytes"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/vllm-proxy/vllm-proxy/sim"
	"github.com/vllm-proxy/vllm-proxy/state/statetest"
)

// TestSecretsNotLogged: a proxy on a password-protected Redis runs at the loudest log
// level (every header, body and Redis command) while clients send credentials in
// Authorization, X-Api-Key and Cookie headers, upload a batch file, run a batch, and
// Redis is SIGKILLed and restarted (reconnect errors name the server). Expected: no line
// of the proxy's output contains the Redis password or any client credential.
func TestSecretsNotLogged(t *testing.T) {
	t.Parallel()
	const (
		redisPassword = "redis-pw-Zq83hfK2"
		bearer        = "sk-client-bearer-Hq72mX"
		apiKey        = "client-api-key-Vn41pL"
		cookie        = "session-cookie-Tw95cR"
	)
	rd := statetest.StartRedis(t, statetest.Options{Password: redisPassword})
	be := startSim(t, sim.Config{Instant: true})
	px, _ := startProxy(t, "proxy", proxyConfig{Backends: []string{be.URL()}}, rd.URL, []string{"-vvvvv"}, procOpts{})
	c := newClient(t)

	send := func(stream bool) {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, px.URL+"/v1/chat/completions", bytes.NewReader(chatBody(1, 4, stream)))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+bearer)
		req.Header.Set("X-Api-Key", apiKey)
		req.Header.Set("Cookie", "session="+cookie)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("request: %v", err)
		}
		if b := readAll(resp); resp.StatusCode != http.StatusOK {
			t.Fatalf("request: %d %.200s", resp.StatusCode, b)
		}
	}
	send(false)
	send(true)
	n := 20
	job := createBatch(t, c, px.URL, mustUpload(t, c, px.URL, batchInput(n, 4)))
	if !poll(60*time.Second, func() bool { b, _ := getBatch(t, c, px.URL, job.ID); return b.Status == "completed" }) {
		t.Fatalf("batch did not complete")
	}
	rd.Kill()
	send(false)                // interactive traffic while Redis is down
	_ = filesStatus(c, px.URL) // a Files API error while Redis is down
	time.Sleep(time.Second)    // let the driver log its reconnect attempts
	rd.Restart()
	if !poll(30*time.Second, func() bool { return filesStatus(c, px.URL) == http.StatusOK }) {
		t.Fatalf("Files API not back after the Redis restart")
	}
	send(false)

	out := px.Output()
	lines := strings.Count(out, "\n")
	if lines < 20 {
		t.Fatalf("only %d log lines at the loudest level: the test saw too little", lines)
	}
	if !strings.Contains(out, "xxxxx") {
		t.Errorf("no masked credential in the output: the headers were not logged, so the test proves nothing")
	}
	for _, secret := range []string{redisPassword, bearer, apiKey, cookie} {
		for i, line := range strings.Split(out, "\n") {
			if strings.Contains(line, secret) {
				t.Errorf("log line %d contains %q: %.300s", i+1, secret, line)
				break
			}
		}
	}
	result(t, "%d log lines at Loud (headers, bodies, Redis commands, a Redis outage): no Redis password, bearer token, API key or cookie", lines)
}
