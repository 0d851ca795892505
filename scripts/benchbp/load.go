package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/vllm-proxy/vllm-proxy/proxy"
	"github.com/vllm-proxy/vllm-proxy/routing"
)

// sample is one interactive request as the client saw it.
type sample struct {
	at   time.Duration // arrival, from the run's start
	ttft time.Duration
	e2e  time.Duration
	itls []time.Duration
	ok   bool
}

// shape is the request shape shared by interactive requests and batch lines.
type shape struct {
	promptChars int
	maxTokens   int
	// salt starts every prompt. Each run has its own, so a run's prompts never hit the
	// prefix cache an earlier run left in the simulators (runs with the same seed repeat
	// the same random prompts, to repeat the same arrivals).
	salt string
}

// prompt returns a unique prompt (no prefix-cache reuse between requests).
func (s shape) prompt(rnd *rand.Rand) string {
	var b strings.Builder
	b.Grow(s.promptChars)
	b.WriteString(s.salt)
	for b.Len() < s.promptChars {
		fmt.Fprintf(&b, "%08x ", rnd.Uint32())
	}
	return b.String()[:s.promptChars]
}

func (s shape) body(rnd *rand.Rand, stream bool) []byte {
	b, _ := json.Marshal(map[string]any{
		"model": "m", "max_tokens": s.maxTokens, "stream": stream,
		"messages": []map[string]string{{"role": "user", "content": s.prompt(rnd)}},
	})
	return b
}

// interactive sends streaming chat requests to urls in turn with Poisson arrivals at
// rate(t) requests/s until ctx ends, and returns what every request saw.
func interactive(ctx context.Context, client *http.Client, urls []string, sh shape, seed uint64, start time.Time, rate func(time.Duration) float64) []sample {
	rnd := rand.New(rand.NewPCG(seed, 1))
	var mu sync.Mutex
	var out []sample
	var wg sync.WaitGroup
	next := time.Duration(0)
	n := 0
	for {
		r := rate(next)
		next += time.Duration(rnd.ExpFloat64() / r * float64(time.Second))
		wait := time.Until(start.Add(next))
		select {
		case <-ctx.Done():
			wg.Wait()
			return out
		case <-time.After(wait):
		}
		body := sh.body(rnd, true)
		at := next
		url := urls[n%len(urls)]
		n++
		wg.Go(func() {
			s := stream(ctx, client, url, body)
			s.at = at
			if ctx.Err() != nil && !s.ok {
				return // cut by the end of the run, not a result
			}
			mu.Lock()
			out = append(out, s)
			mu.Unlock()
		})
	}
}

// stream sends one streaming request and times its content chunks.
func stream(ctx context.Context, client *http.Client, url string, body []byte) sample {
	t0 := time.Now()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url+"/v1/chat/completions", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return sample{}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return sample{}
	}
	var s sample
	var last time.Time
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if !bytes.HasPrefix(line, []byte("data:")) {
			continue
		}
		if bytes.Contains(line, []byte("[DONE]")) {
			s.ok = true
			break
		}
		if !bytes.Contains(line, []byte(`"content":"`)) || bytes.Contains(line, []byte(`"content":""`)) {
			continue // the role chunk, or the final one
		}
		now := time.Now()
		if last.IsZero() {
			s.ttft = now.Sub(t0)
		} else {
			s.itls = append(s.itls, now.Sub(last))
		}
		last = now
	}
	s.e2e = time.Since(t0)
	return s
}

// batchDone is one finished batch line.
type batchDone struct {
	at     time.Duration
	tokens int
}

// batchLoad runs workers goroutines that each send batch lines through Dispatch, one
// after the other, until ctx ends (a batch that outlasts the run); worker w uses replica
// w modulo len(hs), as the replicas' batch workers share one batch.
func batchLoad(ctx context.Context, hs []*proxy.Handler, sh shape, workers int, seed uint64, start time.Time) []batchDone {
	var mu sync.Mutex
	var out []batchDone
	var wg sync.WaitGroup
	for w := range workers {
		h := hs[w%len(hs)]
		wg.Go(func() {
			rnd := rand.New(rand.NewPCG(seed, uint64(w)+100))
			for ctx.Err() == nil {
				resp, err := h.Dispatch(ctx, proxy.DispatchRequest{Path: "/v1/chat/completions", Body: sh.body(rnd, false), Class: routing.ClassBatch})
				if err != nil || resp.Status != http.StatusOK {
					continue
				}
				var u struct {
					Usage struct {
						CompletionTokens int `json:"completion_tokens"`
					} `json:"usage"`
				}
				_ = json.Unmarshal(resp.Body, &u)
				mu.Lock()
				out = append(out, batchDone{at: time.Since(start), tokens: u.Usage.CompletionTokens})
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return out
}

// point is one sample of the requests in flight and of the batch targets.
type point struct {
	at                 time.Duration
	batch, interactive int64
	target             int // sum over backends of this replica's batch targets
}

// sampleInFlight records routing's in-flight counts every 20ms until ctx ends.
func sampleInFlight(ctx context.Context, s *stack, start time.Time) []point {
	var out []point
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return out
		case <-t.C:
		}
		b, i := s.inFlight()
		out = append(out, point{at: time.Since(start), batch: b, interactive: i, target: s.targets()})
	}
}
