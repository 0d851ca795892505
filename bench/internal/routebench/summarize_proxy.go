package main

import (
	"os"
	"path/filepath"
	"strings"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// proxyCounters sums, per setup name, the proxy-side counters saved by the script in
// <run>/proxy-metrics/<name>-<port>.prom: decision reasons, prefix lookup sources and
// Redis errors. Keys: "decision/<reason>", "lookup/<source>", "redis_errors".
func proxyCounters(runs []*run) map[string]map[string]float64 {
	out := map[string]map[string]float64{}
	for _, r := range runs {
		files, _ := filepath.Glob(filepath.Join(r.dir, "proxy-metrics", "*.prom"))
		for _, f := range files {
			base := strings.TrimSuffix(filepath.Base(f), ".prom")
			i := strings.LastIndexByte(base, '-')
			if i < 0 {
				continue
			}
			name := base[:i]
			if out[name] == nil {
				out[name] = map[string]float64{}
			}
			addProxyCounters(f, out[name])
		}
	}
	return out
}

func addProxyCounters(path string, into map[string]float64) {
	fh, err := os.Open(path)
	if err != nil {
		return
	}
	defer fh.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(fh)
	if err != nil {
		return
	}
	label := func(name, key, prefix string) {
		for _, m := range fams[name].GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == key {
					into[prefix+l.GetValue()] += m.GetCounter().GetValue()
				}
			}
		}
	}
	label("vllm_proxy_routing_decisions_total", "reason", "decision/")
	label("vllm_proxy_state_prefix_lookups_total", "source", "lookup/")
	into["redis_errors"] += sum(fams["vllm_proxy_redis_errors_total"])
}

// printProxyCounters writes the decision-reason and lookup-source shares of each setup.
func printProxyCounters(p *printer, runs []*run, names []string) {
	pc := proxyCounters(runs)
	if len(pc) == 0 {
		return
	}
	reasons := []string{"affinity", "saturation_release", "cold_placement", "fallback"}
	sources := []string{"redis", "local", "budget"}
	p.f("Proxy side, summed over runs and replicas (share of decisions; share of prefix lookups by where the answer came from):\n\n")
	p.f("| setup |")
	for _, r := range reasons {
		p.f(" %s |", r)
	}
	for _, s := range sources {
		p.f(" lookup: %s |", s)
	}
	p.f(" Redis errors |\n|---|")
	for range len(reasons) + len(sources) + 1 {
		p.f("---:|")
	}
	p.f("\n")
	for _, n := range names {
		c, ok := pc[n]
		if !ok {
			continue
		}
		var dec, look float64
		for _, r := range reasons {
			dec += c["decision/"+r]
		}
		for _, s := range sources {
			look += c["lookup/"+s]
		}
		p.f("| %s |", n)
		for _, r := range reasons {
			p.f(" %s |", fmtNum(div(c["decision/"+r], dec), 3))
		}
		for _, s := range sources {
			p.f(" %s |", fmtNum(div(c["lookup/"+s], look), 3))
		}
		p.f(" %.0f |\n", c["redis_errors"])
	}
	p.f("\n")
}
