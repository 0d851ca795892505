package sim

import (
	"bufio"
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"
)

const chatBody = `{"model":"m1","messages":[{"role":"user","content":"hello"}],"max_tokens":5}`

func TestFaultFailRate(t *testing.T) {
	s := startSim(t, Config{Model: "m1", Instant: true, Faults: Faults{FailRate: 1}})
	status, body := post(t, s.URL()+"/v1/chat/completions", chatBody)
	if status != 500 || !strings.Contains(body, `"type":"InternalServerError"`) || !strings.Contains(body, `"code":500`) {
		t.Fatalf("fail-rate 1: %d %s", status, body)
	}
	s.SetFaults(Faults{FailRate: 0.5})
	fails := 0
	for range 200 {
		if status, _ := post(t, s.URL()+"/v1/chat/completions", chatBody); status == 500 {
			fails++
		}
	}
	if fails < 60 || fails > 140 {
		t.Errorf("fail-rate 0.5 failed %d of 200", fails)
	}
	s.SetFaults(Faults{})
	if status, body := post(t, s.URL()+"/v1/chat/completions", chatBody); status != 200 {
		t.Fatalf("faults cleared: %d %s", status, body)
	}
	if got := s.Snapshot().Statuses[500]; got != int64(fails+1) {
		t.Errorf("snapshot counts %d 500s, want %d", got, fails+1)
	}
}

func TestFaultHang(t *testing.T) {
	s := startSim(t, Config{Model: "m1", Instant: true, Faults: Faults{HangRate: 1}})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, s.URL()+"/v1/chat/completions", strings.NewReader(chatBody))
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	waitFor(t, "the request to be in flight", func() bool { return s.Snapshot().InFlight == 1 })
	select {
	case err := <-done:
		t.Fatalf("hung request answered: %v", err)
	default:
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("hung request ended with %v, want context.Canceled", err)
	}
	waitFor(t, "the hung handler to return", func() bool { return s.Snapshot().InFlight == 0 })
}

func TestFaultHangReleasedByClose(t *testing.T) {
	s, err := Start(t.Context(), Config{Model: "m1", Instant: true, Faults: Faults{HangRate: 1}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, s.URL()+"/v1/chat/completions", strings.NewReader(chatBody))
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	waitFor(t, "the request to be in flight", func() bool { return s.Snapshot().InFlight == 1 })
	s.Close() // must not wait forever for the hung handler
	s.Close()
	if err := <-done; err == nil {
		t.Fatal("hung request got a response after Close")
	}
}

func TestFaultDropStream(t *testing.T) {
	for _, instant := range []bool{true, false} {
		cfg := Config{Model: "m1", Instant: instant, TimeScale: 1000, Faults: Faults{DropStreamAfter: 3}}
		s := startSim(t, cfg)
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, s.URL()+"/v1/chat/completions",
			strings.NewReader(`{"model":"m1","stream":true,"messages":[{"role":"user","content":"hi"}],"max_tokens":10}`))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(resp.Body)
		events := 0
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "data: ") {
				events++
				if sc.Text() == "data: [DONE]" {
					t.Errorf("instant=%v: stream finished despite the fault", instant)
				}
			}
		}
		resp.Body.Close()
		if sc.Err() == nil {
			t.Errorf("instant=%v: stream ended cleanly, want a cut connection", instant)
		}
		if events != 3 {
			t.Errorf("instant=%v: got %d events before the cut, want 3", instant, events)
		}
		waitFor(t, "the engine to drop the request", func() bool {
			snap := s.Snapshot()
			return snap.Running == 0 && snap.KVBlocksUsed == 0 && snap.InFlight == 0
		})
	}
}

func TestFaultStartupDelay(t *testing.T) {
	s := startSim(t, Config{Model: "m1", Instant: true, StartupDelay: 300 * time.Millisecond})
	if status, _ := get(t, s.URL()+"/health"); status != 503 {
		t.Fatalf("health during startup = %d, want 503", status)
	}
	if status, body := post(t, s.URL()+"/v1/chat/completions", chatBody); status != 503 {
		t.Fatalf("chat during startup = %d %s, want 503", status, body)
	}
	waitFor(t, "health 200", func() bool { status, _ := get(t, s.URL()+"/health"); return status == 200 })
	if status, _ := post(t, s.URL()+"/v1/chat/completions", chatBody); status != 200 {
		t.Fatalf("chat after startup = %d", status)
	}
}

func TestControlEndpoint(t *testing.T) {
	s := startSim(t, Config{Model: "m1", Instant: true, Control: true})
	status, body := post(t, s.URL()+"/sim/control", `{"healthy":false,"fail_rate":1}`)
	if status != 200 || !strings.Contains(body, `"healthy":false`) || !strings.Contains(body, `"fail_rate":1`) {
		t.Fatalf("control: %d %s", status, body)
	}
	if status, _ := get(t, s.URL()+"/health"); status != 503 {
		t.Errorf("health after control = %d, want 503", status)
	}
	if status, _ := post(t, s.URL()+"/v1/chat/completions", chatBody); status != 500 {
		t.Errorf("chat with fail_rate 1 = %d, want 500", status)
	}
	if status, _ := post(t, s.URL()+"/sim/control", `{"healthy":true,"fail_rate":0,"drop_stream_after":2}`); status != 200 {
		t.Fatalf("control reset: %d", status)
	}
	if f := s.Faults(); f.FailRate != 0 || f.DropStreamAfter != 2 {
		t.Errorf("faults after control = %+v", f)
	}
	if status, _ := get(t, s.URL()+"/health"); status != 200 {
		t.Errorf("health after reset = %d", status)
	}
	for _, bad := range []string{`{"fail_rate":2}`, `{"nope":1}`, `{`} {
		if status, body := post(t, s.URL()+"/sim/control", bad); status != 400 || !strings.Contains(body, `"error"`) {
			t.Errorf("control %s = %d %s, want 400", bad, status, body)
		}
	}
	if status, body := get(t, s.URL()+"/sim/control"); status != 200 || !strings.Contains(body, `"drop_stream_after":2`) {
		t.Errorf("GET control = %d %s", status, body)
	}
}

func TestControlDisabledByDefault(t *testing.T) {
	s := startSim(t, Config{Model: "m1", Instant: true})
	if status, _ := post(t, s.URL()+"/sim/control", `{"healthy":false}`); status != 404 {
		t.Errorf("control without Config.Control = %d, want 404", status)
	}
	s.SetHealthy(false)
	if status, _ := get(t, s.URL()+"/health"); status != 503 {
		t.Errorf("health after SetHealthy(false) = %d, want 503", status)
	}
}

// The role chunk of a chat stream waits for the first token, as vLLM's does, so the time
// to a stream's first body byte is its time to first token; the headers go out at once.
func TestStreamFirstByteWaitsForFirstToken(t *testing.T) {
	// About 1,000 prompt tokens at 2,000 tokens/s: a prefill of about 500 ms.
	s := startSim(t, Config{Model: "m1", PrefillTokensPerS: 2000})
	body := `{"model":"m1","stream":true,"max_tokens":2,"messages":[{"role":"user","content":"` +
		strings.Repeat("word ", 1000) + `"}]}`
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, s.URL()+"/v1/chat/completions", strings.NewReader(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	headers := time.Now()
	if snap := s.Snapshot(); resp.StatusCode != 200 || snap.InFlight != 1 {
		t.Fatalf("status %d, in flight %d: headers should arrive while the request runs", resp.StatusCode, snap.InFlight)
	}
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	// A lower bound only: a slow machine makes the wait longer, never shorter.
	if waited := time.Since(headers); waited < 300*time.Millisecond {
		t.Errorf("first event %q came %s after the headers, before the ~500 ms prefill ended", line, waited)
	}
	if !strings.Contains(line, `"role":"assistant"`) {
		t.Errorf("first event %q is not the role chunk", line)
	}
}
