package sim

import (
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The /metrics page is rendered from engine views taken at scrape time, so every value
// agrees with the engine state at that moment. It does not use a prometheus.Registry:
// these are vLLM's metrics (vllm: prefix, vLLM's label sets), not the process's own, and
// V0 pages aggregate engines, which a registry of live collectors would not do as simply.

// promWriter appends Prometheus text exposition format 0.0.4.
type promWriter struct {
	b []byte
}

func (p *promWriter) family(name, typ, help string) {
	p.b = append(p.b, "# HELP "...)
	p.b = append(p.b, name...)
	p.b = append(p.b, ' ')
	p.b = append(p.b, help...)
	p.b = append(p.b, "\n# TYPE "...)
	p.b = append(p.b, name...)
	p.b = append(p.b, ' ')
	p.b = append(p.b, typ...)
	p.b = append(p.b, '\n')
}

// sample appends name{labels...} value; labels are name/value pairs.
func (p *promWriter) sample(name string, v float64, labels ...string) {
	p.b = append(p.b, name...)
	if len(labels) > 0 {
		p.b = append(p.b, '{')
		for i := 0; i+1 < len(labels); i += 2 { // an odd trailing name has no value: dropped
			if i > 0 {
				p.b = append(p.b, ',')
			}
			p.b = append(p.b, labels[i]...)
			p.b = append(p.b, `="`...)
			p.b = append(p.b, escapeLabel(labels[i+1])...)
			p.b = append(p.b, '"')
		}
		p.b = append(p.b, '}')
	}
	p.b = append(p.b, ' ')
	if v == math.Trunc(v) && math.Abs(v) < 1e15 {
		p.b = strconv.AppendInt(p.b, int64(v), 10) // counters read better as integers
	} else {
		p.b = strconv.AppendFloat(p.b, v, 'g', -1, 64)
	}
	p.b = append(p.b, '\n')
}

var labelEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)

func escapeLabel(s string) string { return labelEscaper.Replace(s) }

func (p *promWriter) histogram(name string, h *histogram, labels ...string) {
	var cum uint64
	le := append(slices.Clone(labels), "le", "")
	for i, bound := range h.bounds {
		cum += h.counts[i]
		le[len(le)-1] = strconv.FormatFloat(bound, 'g', -1, 64)
		p.sample(name+"_bucket", float64(cum), le...)
	}
	le[len(le)-1] = "+Inf"
	p.sample(name+"_bucket", float64(h.count), le...)
	p.sample(name+"_sum", h.sum, labels...)
	p.sample(name+"_count", float64(h.count), labels...)
}

func (s *Server) handleMetrics(w http.ResponseWriter, _ *http.Request) {
	views := make([]engineView, len(s.engines))
	for i, e := range s.engines {
		views[i] = e.view()
	}
	p := &promWriter{b: make([]byte, 0, 16<<10)}
	if s.cfg.MetricsVersion == MetricsV0 {
		s.renderV0(p, views)
	} else {
		s.renderV1(p, views)
	}
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	_, _ = w.Write(p.b) // a failed write means the scraper left
}

func boolLabel(b bool) string {
	if b {
		return "True"
	}
	return "False"
}

// cacheConfigLabels are vllm:cache_config_info's labels (a subset of vLLM's CacheConfig).
func (s *Server) cacheConfigLabels() []string {
	return []string{
		"block_size", strconv.Itoa(s.cfg.BlockSize),
		"cache_dtype", "auto",
		"enable_prefix_caching", boolLabel(!s.cfg.DisablePrefixCaching),
		"gpu_memory_utilization", "0.9",
		"num_gpu_blocks", strconv.Itoa(s.cfg.NumGPUBlocks),
		"num_cpu_blocks", "None",
		"model_name", s.cfg.ServedModelNames[0],
	}
}

// renderV1 writes vLLM V1 engine metrics: one series per engine (label engine="i").
func (s *Server) renderV1(p *promWriter, views []engineView) {
	model := s.cfg.ServedModelNames[0]
	each := func(name, typ, help string, val func(v *engineView) float64) {
		p.family(name, typ, help)
		for i := range views {
			p.sample(name, val(&views[i]), "engine", strconv.Itoa(views[i].Index), "model_name", model)
		}
	}
	each("vllm:num_requests_running", "gauge", "Number of requests in model execution batches.",
		func(v *engineView) float64 { return float64(v.Running) })
	each("vllm:num_requests_waiting", "gauge", "Number of requests waiting to be processed.",
		func(v *engineView) float64 { return float64(v.Waiting) })
	each("vllm:kv_cache_usage_perc", "gauge", "KV-cache usage. 1 means 100 percent usage.",
		func(v *engineView) float64 { return v.KVUsage })
	each("vllm:prefix_cache_queries_total", "counter", "Prefix cache queries, in terms of number of queried tokens.",
		func(v *engineView) float64 { return float64(v.PrefixQueries) })
	each("vllm:prefix_cache_hits_total", "counter", "Prefix cache hits, in terms of number of cached tokens.",
		func(v *engineView) float64 { return float64(v.PrefixHits) })
	each("vllm:num_preemptions_total", "counter", "Cumulative number of preemption from the engine.",
		func(v *engineView) float64 { return float64(v.Preemptions) })
	each("vllm:prompt_tokens_total", "counter", "Number of prefill tokens processed.",
		func(v *engineView) float64 { return float64(v.stats.promptTokens) })
	each("vllm:generation_tokens_total", "counter", "Number of generation tokens processed.",
		func(v *engineView) float64 { return float64(v.stats.generationTokens) })
	p.family("vllm:cache_config_info", "gauge", "Information of the LLMEngine CacheConfig")
	for i := range views {
		p.sample("vllm:cache_config_info", 1, append(s.cacheConfigLabels(), "engine", strconv.Itoa(views[i].Index))...)
	}
	if len(s.cfg.LoRAs) > 0 {
		p.family("vllm:lora_requests_info", "gauge", "Running stats on lora requests.")
		now := float64(time.Now().UnixNano()) / 1e9
		for i := range views {
			p.sample("vllm:lora_requests_info", now,
				"engine", strconv.Itoa(views[i].Index), "max_lora", strconv.Itoa(len(s.cfg.LoRAs)), "model_name", model,
				"running_lora_adapters", joinKeys(views[i].runningLoRA), "waiting_lora_adapters", joinKeys(views[i].waitLoRA))
		}
	}
	hist := func(name, help string, pick func(v *engineView) *histogram) {
		p.family(name, "histogram", help)
		for i := range views {
			p.histogram(name, pick(&views[i]), "engine", strconv.Itoa(views[i].Index), "model_name", model)
		}
	}
	hist("vllm:time_to_first_token_seconds", "Histogram of time to first token in seconds.",
		func(v *engineView) *histogram { return &v.stats.ttft })
	hist("vllm:inter_token_latency_seconds", "Histogram of inter-token latency in seconds.",
		func(v *engineView) *histogram { return &v.stats.itl })
	hist("vllm:e2e_request_latency_seconds", "Histogram of e2e request latency in seconds.",
		func(v *engineView) *histogram { return &v.stats.e2e })
	hist("vllm:request_queue_time_seconds", "Histogram of time spent in WAITING phase for request.",
		func(v *engineView) *histogram { return &v.stats.queue })
}

// renderV0 writes the pre-V1 names. V0 had no engine label, so engines are aggregated:
// counts summed, KV usage averaged.
func (s *Server) renderV0(p *promWriter, views []engineView) {
	model := s.cfg.ServedModelNames[0]
	var agg engineView
	agg.stats = newEngineStats()
	for i := range views {
		v := &views[i]
		agg.Running += v.Running
		agg.Waiting += v.Waiting
		agg.KVUsage += v.KVUsage / float64(len(views))
		agg.PrefixQueries += v.PrefixQueries
		agg.PrefixHits += v.PrefixHits
		agg.Preemptions += v.Preemptions
		agg.stats.promptTokens += v.stats.promptTokens
		agg.stats.generationTokens += v.stats.generationTokens
		agg.stats.ttft.add(&v.stats.ttft)
		agg.stats.itl.add(&v.stats.itl)
		agg.stats.e2e.add(&v.stats.e2e)
		agg.stats.queue.add(&v.stats.queue)
	}
	one := func(name, typ, help string, val float64) {
		p.family(name, typ, help)
		p.sample(name, val, "model_name", model)
	}
	one("vllm:num_requests_running", "gauge", "Number of requests currently running on GPU.", float64(agg.Running))
	one("vllm:num_requests_waiting", "gauge", "Number of requests waiting to be processed.", float64(agg.Waiting))
	one("vllm:num_requests_swapped", "gauge", "Number of requests swapped to CPU.", 0)
	one("vllm:gpu_cache_usage_perc", "gauge", "GPU KV-cache usage. 1 means 100 percent usage.", agg.KVUsage)
	one("vllm:cpu_cache_usage_perc", "gauge", "CPU KV-cache usage. 1 means 100 percent usage.", 0)
	one("vllm:gpu_prefix_cache_queries_total", "counter", "GPU prefix cache queries, in terms of number of queried tokens.", float64(agg.PrefixQueries))
	one("vllm:gpu_prefix_cache_hits_total", "counter", "GPU prefix cache hits, in terms of number of cached tokens.", float64(agg.PrefixHits))
	rate := 0.0
	if agg.PrefixQueries > 0 {
		rate = float64(agg.PrefixHits) / float64(agg.PrefixQueries)
	}
	one("vllm:gpu_prefix_cache_hit_rate", "gauge", "GPU prefix cache block hit rate.", rate)
	one("vllm:num_preemptions_total", "counter", "Cumulative number of preemption from the engine.", float64(agg.Preemptions))
	one("vllm:prompt_tokens_total", "counter", "Number of prefill tokens processed.", float64(agg.stats.promptTokens))
	one("vllm:generation_tokens_total", "counter", "Number of generation tokens processed.", float64(agg.stats.generationTokens))
	p.family("vllm:cache_config_info", "gauge", "Information of the LLMEngine CacheConfig")
	p.sample("vllm:cache_config_info", 1, s.cacheConfigLabels()...)
	hist := func(name, help string, h *histogram) {
		p.family(name, "histogram", help)
		p.histogram(name, h, "model_name", model)
	}
	hist("vllm:time_to_first_token_seconds", "Histogram of time to first token in seconds.", &agg.stats.ttft)
	hist("vllm:time_per_output_token_seconds", "Histogram of time per output token in seconds.", &agg.stats.itl)
	hist("vllm:e2e_request_latency_seconds", "Histogram of end to end request latency in seconds.", &agg.stats.e2e)
	hist("vllm:request_queue_time_seconds", "Histogram of time spent in WAITING phase for request.", &agg.stats.queue)
}

func joinKeys(m map[string]bool) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return strings.Join(keys, ",")
}
