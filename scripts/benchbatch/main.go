// Command benchbatch drives the Batch API benchmarks of docs/BENCHMARKS.md against running
// `vllm-proxy serve` replicas (see scripts/bench-batch.sh, which starts them):
//
//	benchbatch gen -out FILE -lines N -line-bytes B
//	benchbatch run -api URL,... -pids PID,... -redis ADDR -sims URL,... -file FILE [flags]
//	benchbatch table FILE.jsonl
//
// run uploads FILE through the first replica, creates a batch, polls it through the last
// one until it ends, and prints one JSON line: upload MiB/s, validation time, wall time
// and lines/s, the replicas' RSS growth (VmRSS from /proc), Redis memory of the batch's
// keys while running and once finished (MEMORY USAGE), how many lines the simulators
// received, and whether every custom_id is in the result files exactly once. With -kill
// it SIGKILLs one replica mid-batch and reports re-executed lines and the takeover time.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: benchbatch gen|run|table [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "gen":
		err = gen(os.Args[2:])
	case "run":
		err = run(os.Args[2:])
	case "table":
		err = table(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchbatch:", err)
		os.Exit(1)
	}
}

// gen writes a chat batch input file: lines of about lineBytes bytes, 8 system prompts
// shared by every 8th line (so prefix grouping has something to group).
func gen(args []string) error {
	fs := flag.NewFlagSet("gen", flag.ExitOnError)
	out := fs.String("out", "", "output file")
	lines := fs.Int("lines", 50000, "number of lines")
	lineBytes := fs.Int("line-bytes", 200, "approximate bytes per line")
	_ = fs.Parse(args)
	f, err := os.Create(*out)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	words := []string{"alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel"}
	for i := range *lines {
		head := fmt.Sprintf(`{"custom_id":"req-%d","method":"POST","url":"/v1/chat/completions","body":{"model":"m1","max_tokens":8,"messages":[{"role":"system","content":"You are assistant %d."},{"role":"user","content":"question %d`, i, i%8, i)
		var pad strings.Builder
		for j := 0; len(head)+pad.Len()+8 < *lineBytes; j++ {
			pad.WriteString(" " + words[(i+j)%len(words)])
		}
		if _, err := w.WriteString(head + pad.String() + `"}]}}` + "\n"); err != nil {
			return err
		}
	}
	if err := w.Flush(); err != nil {
		return err
	}
	return f.Close()
}

// result is one run's figures (one JSON line).
type result struct {
	Label         string    `json:"label"`
	Lines         int64     `json:"lines"`
	FileBytes     int64     `json:"file_bytes"`
	UploadS       float64   `json:"upload_s"`
	UploadMiBps   float64   `json:"upload_mibps"`
	ValidateS     float64   `json:"validate_s"`
	ValidateN     []float64 `json:"validations"`
	ToRunningS    float64   `json:"create_to_in_progress_s"`
	WallS         float64   `json:"wall_s"`
	RunS          float64   `json:"run_s"`
	LinesPerS     float64   `json:"lines_per_s"`
	RSSBaseMiB    []float64 `json:"rss_base_mib"`
	RSSUploadMiB  []float64 `json:"rss_upload_growth_mib"`
	RSSBatchMiB   []float64 `json:"rss_batch_growth_mib"`
	RedisRunning  int64     `json:"redis_running_bytes"`
	RedisParts    int64     `json:"redis_running_part_blobs_bytes"`
	RedisFinished int64     `json:"redis_finished_bytes"`
	Status        string    `json:"status"`
	Completed     int64     `json:"completed"`
	Failed        int64     `json:"failed"`
	Exact         bool      `json:"exact"`
	SimReceived   int64     `json:"sim_received"`
	Reexecuted    int64     `json:"reexecuted"`
	KilledInFl    int64     `json:"killed_in_flight"`
	KilledUncomm  int64     `json:"killed_uncommitted"`
	RedisUsedRun  int64     `json:"redis_used_memory_delta_running"`
	RedisUsedFin  int64     `json:"redis_used_memory_delta_finished"`
	RedisPrefix   int64     `json:"redis_routing_prefix_keys_bytes"`
	ResumeS       float64   `json:"resume_s"`
	Load1         []float64 `json:"load1"`
}

func run(args []string) error {
	fs := flag.NewFlagSet("run", flag.ExitOnError)
	apis := fs.String("api", "", "replica base URLs, comma-separated (upload/create via the first, poll via the last)")
	pids := fs.String("pids", "", "replica PIDs, same order")
	redisAddr := fs.String("redis", "", "redis host:port")
	sims := fs.String("sims", "", "simulator base URLs, comma-separated")
	file := fs.String("file", "", "batch input file")
	label := fs.String("label", "", "label of this run")
	uploadOnly := fs.Bool("upload-only", false, "stop after the upload")
	kill := fs.Int("kill", -1, "index of the replica to SIGKILL mid-batch (-1: none)")
	killAt := fs.Float64("kill-at", 0.3, "fraction of lines completed when -kill fires")
	timeout := fs.Duration("timeout", 15*time.Minute, "give up after this long")
	_ = fs.Parse(args)

	b := &bench{apis: strings.Split(*apis, ","), redis: *redisAddr, sims: strings.Split(*sims, ",")}
	for _, p := range strings.Split(*pids, ",") {
		var n int
		if _, err := fmt.Sscan(p, &n); err != nil {
			return fmt.Errorf("pid %q: %w", p, err)
		}
		b.pids = append(b.pids, n)
	}
	// A 16-line batch first: connections, Lua scripts and indexes exist before the
	// baselines are taken, so the deltas below belong to the measured batch.
	if err := b.warmup(); err != nil {
		return fmt.Errorf("warm-up batch: %w", err)
	}
	r := result{Label: *label}
	r.Load1 = append(r.Load1, load1())
	mon := startRSS(b.pids)
	defer mon.stop()
	simBase, err := b.simReceived()
	if err != nil {
		return err
	}
	validateBase := b.metricSum("vllm_proxy_batch_validation_duration_seconds_sum", "")
	usedBase := b.usedMemory()

	fileID, size, dur, err := b.upload(*file)
	if err != nil {
		return err
	}
	r.FileBytes, r.UploadS = size, dur.Seconds()
	r.UploadMiBps = float64(size) / (1 << 20) / dur.Seconds()
	r.RSSBaseMiB, r.RSSUploadMiB = mon.mark()
	if *uploadOnly {
		r.Load1 = append(r.Load1, load1())
		return emit(r)
	}

	created := time.Now()
	var bo batchObj
	if err := b.post(b.apis[0]+"/v1/batches", fmt.Sprintf(`{"input_file_id":%q,"endpoint":"/v1/chat/completions","completion_window":"24h"}`, fileID), &bo); err != nil {
		return err
	}
	poll := b.apis[len(b.apis)-1]
	if *kill >= 0 && *kill == len(b.apis)-1 {
		poll = b.apis[0]
	}
	var inProgress, killed time.Time
	midDone := false
	reclaimBase := 0.0
	deadline := time.Now().Add(*timeout)
	for {
		if time.Now().After(deadline) {
			return fmt.Errorf("batch %s not finished after %s", bo.ID, *timeout)
		}
		cur, err := b.getBatch(poll, bo.ID)
		if err != nil {
			return err
		}
		if inProgress.IsZero() && cur.Status != "validating" {
			inProgress = time.Now()
		}
		if !midDone && cur.Status == "in_progress" && cur.Counts.Completed >= cur.Counts.Total/2 {
			midDone = true
			r.RedisRunning = b.memUsage("batch:{" + bo.ID + "}*")
			r.RedisParts = b.memUsage("blob:{part-" + bo.ID + "-*")
			r.RedisUsedRun = b.usedMemory() - usedBase
		}
		if *kill >= 0 && killed.IsZero() && cur.Status == "in_progress" && float64(cur.Counts.Completed) >= *killAt*float64(cur.Counts.Total) {
			survivor := b.apis[(*kill+1)%len(b.apis)]
			reclaimBase = metricOf(survivor, "vllm_proxy_batch_chunk_claims_total", `kind="reclaimed"`)
			dead := b.apis[*kill]
			r.KilledInFl = int64(metricOf(dead, "vllm_proxy_batch_lines_in_flight", ""))
			r.KilledUncomm = int64(metricOf(dead, "vllm_proxy_batch_lines_dispatched_total", "") -
				metricOf(dead, "vllm_proxy_batch_lines_recorded_total", "") - metricOf(dead, "vllm_proxy_batch_lines_duplicate_total", ""))
			if err := killPID(b.pids[*kill]); err != nil {
				return err
			}
			killed = time.Now()
			mon.drop(*kill)
		}
		if !killed.IsZero() && r.ResumeS == 0 {
			survivor := b.apis[(*kill+1)%len(b.apis)]
			if metricOf(survivor, "vllm_proxy_batch_chunk_claims_total", `kind="reclaimed"`) > reclaimBase {
				r.ResumeS = time.Since(killed).Seconds()
			}
		}
		if cur.terminal() {
			r.Status, r.Completed, r.Failed, r.Lines = cur.Status, cur.Counts.Completed, cur.Counts.Failed, cur.Counts.Total
			done := time.Now()
			r.WallS = done.Sub(created).Seconds()
			r.RunS = done.Sub(inProgress).Seconds()
			r.LinesPerS = float64(r.Lines) / r.WallS
			_, r.RSSBatchMiB = mon.mark()
			r.ValidateS = b.metricSum("vllm_proxy_batch_validation_duration_seconds_sum", "") - validateBase
			for _, a := range b.apis {
				r.ValidateN = append(r.ValidateN, metricOf(a, "vllm_proxy_batch_validation_duration_seconds_count", ""))
			}
			r.ToRunningS = inProgress.Sub(created).Seconds()
			b.waitPurged(bo.ID)
			r.RedisUsedFin = b.usedMemory() - usedBase
			r.RedisPrefix = b.memUsage("prefix:*") // routing's prefix index, not the batch's
			r.RedisFinished = b.memUsage("batch:{"+bo.ID+"}*") + b.memUsage("file:{"+bo.ID+"_*") +
				b.memUsage("file:{"+fileID+"}*")
			for _, id := range []*string{cur.OutputFileID, cur.ErrorFileID} {
				if id != nil {
					r.RedisFinished += b.memUsage("file:{" + *id + "}*")
				}
			}
			r.Exact, err = b.exactlyOnce(poll, cur)
			if err != nil {
				return err
			}
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	simNow, err := b.simReceived()
	if err != nil {
		return err
	}
	r.SimReceived = simNow - simBase
	r.Reexecuted = r.SimReceived - r.Lines
	r.Load1 = append(r.Load1, load1())
	return emit(r)
}

func emit(r result) error {
	out, err := json.Marshal(r)
	if err != nil {
		return err
	}
	fmt.Println(string(out))
	return nil
}

type bench struct {
	apis  []string
	pids  []int
	redis string
	sims  []string
}

type batchObj struct {
	ID           string  `json:"id"`
	Status       string  `json:"status"`
	OutputFileID *string `json:"output_file_id"`
	ErrorFileID  *string `json:"error_file_id"`
	Counts       struct {
		Total, Completed, Failed int64
	} `json:"request_counts"`
}

func (o batchObj) terminal() bool {
	switch o.Status {
	case "completed", "failed", "expired", "cancelled":
		return true
	}
	return false
}

var client = &http.Client{Timeout: 10 * time.Minute}

// upload streams the file as multipart through the first replica.
func (b *bench) upload(path string) (string, int64, time.Duration, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, 0, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", 0, 0, err
	}
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		err := mw.WriteField("purpose", "batch")
		if err == nil {
			var fw io.Writer
			if fw, err = mw.CreateFormFile("file", filepath.Base(path)); err == nil {
				if _, err = io.Copy(fw, f); err == nil {
					err = mw.Close()
				}
			}
		}
		pw.CloseWithError(err)
	}()
	start := time.Now()
	resp, err := client.Post(b.apis[0]+"/v1/files", mw.FormDataContentType(), pr)
	if err != nil {
		return "", 0, 0, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	d := time.Since(start)
	if resp.StatusCode != http.StatusOK {
		return "", 0, 0, fmt.Errorf("upload: %d %s", resp.StatusCode, body)
	}
	var fo struct {
		ID    string `json:"id"`
		Bytes int64  `json:"bytes"`
	}
	if err := json.Unmarshal(body, &fo); err != nil {
		return "", 0, 0, err
	}
	if fo.Bytes != st.Size() {
		return "", 0, 0, fmt.Errorf("uploaded %d bytes, file has %d", fo.Bytes, st.Size())
	}
	return fo.ID, fo.Bytes, d, nil
}

func (b *bench) post(url, body string, out any) error {
	resp, err := client.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("POST %s: %d %s", url, resp.StatusCode, raw)
	}
	return json.Unmarshal(raw, out)
}

func (b *bench) getBatch(base, id string) (batchObj, error) {
	var o batchObj
	resp, err := client.Get(base + "/v1/batches/" + id)
	if err != nil {
		return o, err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return o, fmt.Errorf("GET batch: %d %s", resp.StatusCode, raw)
	}
	return o, json.Unmarshal(raw, &o)
}

// exactlyOnce streams both result files and checks every req-i appears once.
func (b *bench) exactlyOnce(base string, o batchObj) (bool, error) {
	seen := make([]bool, o.Counts.Total)
	n := int64(0)
	for _, id := range []*string{o.OutputFileID, o.ErrorFileID} {
		if id == nil {
			continue
		}
		resp, err := client.Get(base + "/v1/files/" + *id + "/content")
		if err != nil {
			return false, err
		}
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 64<<20)
		for sc.Scan() {
			var l struct {
				CustomID string `json:"custom_id"`
			}
			if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
				resp.Body.Close()
				return false, err
			}
			var i int64
			if _, err := fmt.Sscanf(l.CustomID, "req-%d", &i); err != nil || i < 0 || i >= int64(len(seen)) || seen[i] {
				resp.Body.Close()
				return false, nil
			}
			seen[i] = true
			n++
		}
		resp.Body.Close()
		if err := sc.Err(); err != nil {
			return false, err
		}
	}
	return n == o.Counts.Total, nil
}

// simReceived sums the simulators' finished-request counters.
func (b *bench) simReceived() (int64, error) {
	var total float64
	for _, s := range b.sims {
		v := metricOf(s, "vllm:e2e_request_latency_seconds_count", "")
		if v < 0 {
			return 0, errors.New("reading simulator metrics from " + s)
		}
		total += v
	}
	return int64(total), nil
}

func (b *bench) metricSum(name, label string) float64 {
	var t float64
	for _, a := range b.apis {
		if v := metricOf(a, name, label); v > 0 {
			t += v
		}
	}
	return t
}

// metricOf sums the samples of name (whose labels contain label) at base/metrics; -1 on error.
func metricOf(base, name, label string) float64 {
	resp, err := client.Get(base + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	var sum float64
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		l := sc.Text()
		if !strings.HasPrefix(l, name) {
			continue
		}
		rest := l[len(name):]
		if rest == "" || (rest[0] != ' ' && rest[0] != '{') || !strings.Contains(rest, label) {
			continue
		}
		var v float64
		if _, err := fmt.Sscan(rest[strings.LastIndexByte(rest, ' ')+1:], &v); err == nil {
			sum += v
		}
	}
	return sum
}

// memUsage sums MEMORY USAGE over the keys matching pattern.
func (b *bench) memUsage(pattern string) int64 {
	const script = `local s = 0
for _, k in ipairs(redis.call('KEYS', ARGV[1])) do s = s + (redis.call('MEMORY', 'USAGE', k) or 0) end
return s`
	line, err := redisDo(b.redis, "EVAL", script, "0", pattern)
	if err != nil || !strings.HasPrefix(line, ":") {
		fmt.Fprintln(os.Stderr, "memory usage:", line, err)
		return -1
	}
	var n int64
	if _, err := fmt.Sscan(line[1:], &n); err != nil {
		return -1
	}
	return n
}

func (b *bench) warmup() error {
	f, err := os.CreateTemp("", "warmup-*.jsonl")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	for i := range 16 {
		fmt.Fprintf(f, `{"custom_id":"w-%d","method":"POST","url":"/v1/chat/completions","body":{"model":"m1","max_tokens":2,"messages":[{"role":"user","content":"warm up %d"}]}}`+"\n", i, i)
	}
	if err := f.Close(); err != nil {
		return err
	}
	id, _, _, err := b.upload(f.Name())
	if err != nil {
		return err
	}
	var bo batchObj
	if err := b.post(b.apis[0]+"/v1/batches", fmt.Sprintf(`{"input_file_id":%q,"endpoint":"/v1/chat/completions","completion_window":"24h"}`, id), &bo); err != nil {
		return err
	}
	for range 600 {
		cur, err := b.getBatch(b.apis[len(b.apis)-1], bo.ID)
		if err != nil {
			return err
		}
		if cur.terminal() {
			b.waitPurged(bo.ID)
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return errors.New("warm-up batch did not finish in 30 s")
}

// usedMemory is Redis's INFO memory used_memory.
func (b *bench) usedMemory() int64 {
	line, err := redisDo(b.redis, "EVAL", "return tonumber(string.match(redis.call('INFO', 'memory'), 'used_memory:(%d+)'))", "0")
	var n int64
	if err != nil || !strings.HasPrefix(line, ":") {
		fmt.Fprintln(os.Stderr, "used_memory:", line, err)
		return -1
	}
	if _, err := fmt.Sscan(line[1:], &n); err != nil {
		return -1
	}
	return n
}

// waitPurged waits (up to 10 s) until the finalizer has dropped the batch's work keys,
// so the finished-batch figure counts what stays.
func (b *bench) waitPurged(id string) {
	for range 200 {
		line, err := redisDo(b.redis, "EVAL", "return #redis.call('KEYS', ARGV[1])", "0", "batch:{"+id+"}:*")
		if err == nil && line == ":0" {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	fmt.Fprintln(os.Stderr, "batch work keys still present 10 s after the batch ended")
}

func load1() float64 {
	b, _ := os.ReadFile("/proc/loadavg")
	var v float64
	if f := bytes.Fields(b); len(f) > 0 {
		_, _ = fmt.Sscan(string(f[0]), &v) // 0 when unreadable: a figure in a report
	}
	return v
}
