package deploy

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

const monitoringDir = "../examples/monitoring"

// notFromProxy are metrics the dashboards and rules may name that vllm-proxy does not
// export itself. Keep it explicit and short.
var notFromProxy = map[string]string{
	// Prometheus's own per-target series.
	"up": "prometheus",
	// oliver006/redis_exporter (docker-compose.yml's monitoring profile).
	"redis_memory_used_bytes":          "redis_exporter",
	"redis_memory_max_bytes":           "redis_exporter",
	"redis_aof_last_write_status":      "redis_exporter",
	"redis_db_keys":                    "redis_exporter",
	"redis_connected_clients":          "redis_exporter",
	"redis_commands_processed_total":   "redis_exporter",
	"redis_evicted_keys_total":         "redis_exporter",
	"redis_rejected_connections_total": "redis_exporter",
}

// promLabels are added by Prometheus at scrape time or by histograms.
var promLabels = map[string]bool{"instance": true, "job": true, "le": true}

// namedQuery is a query and where it was found.
type namedQuery struct {
	where string
	expr  string
}

// dashboardQueries returns every query of a Grafana dashboard: panel targets (rows and
// nested panels included) and query variables.
func dashboardQueries(t *testing.T, path string) []namedQuery {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		UID        string            `json:"uid"`
		Title      string            `json:"title"`
		Panels     []json.RawMessage `json:"panels"`
		Templating struct {
			List []struct {
				Name  string          `json:"name"`
				Type  string          `json:"type"`
				Query json.RawMessage `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if d.UID == "" || d.Title == "" || len(d.Panels) == 0 {
		t.Errorf("%s: uid %q, title %q, %d panels", path, d.UID, d.Title, len(d.Panels))
	}
	base := filepath.Base(path)
	var out []namedQuery
	var walk func(raw []json.RawMessage)
	walk = func(raw []json.RawMessage) {
		for _, r := range raw {
			var p struct {
				Title   string            `json:"title"`
				Type    string            `json:"type"`
				Panels  []json.RawMessage `json:"panels"`
				Targets []struct {
					Expr string `json:"expr"`
				} `json:"targets"`
			}
			if err := json.Unmarshal(r, &p); err != nil {
				t.Fatalf("%s: panel: %v", base, err)
			}
			if p.Type != "row" && len(p.Targets) == 0 {
				t.Errorf("%s: panel %q has no query", base, p.Title)
			}
			for _, tg := range p.Targets {
				out = append(out, namedQuery{base + ": panel " + p.Title, tg.Expr})
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		var q string
		if json.Unmarshal(v.Query, &q) != nil {
			var obj struct {
				Query string `json:"query"`
			}
			if err := json.Unmarshal(v.Query, &obj); err != nil {
				t.Fatalf("%s: variable %s: %v", base, v.Name, err)
			}
			q = obj.Query
		}
		out = append(out, namedQuery{base + ": variable " + v.Name, q})
	}
	return out
}

// ruleQueries returns every alert expression of a Prometheus rules file.
func ruleQueries(t *testing.T, path string) []namedQuery {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var rules struct {
		Groups []struct {
			Name  string `json:"name"`
			Rules []struct {
				Alert       string            `json:"alert"`
				Expr        string            `json:"expr"`
				For         string            `json:"for,omitempty"`
				Labels      map[string]string `json:"labels"`
				Annotations map[string]string `json:"annotations"`
			} `json:"rules"`
		} `json:"groups"`
	}
	if err := yaml.UnmarshalStrict(data, &rules); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	var out []namedQuery
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" || r.Expr == "" || r.Labels["severity"] == "" || r.Annotations["summary"] == "" {
				t.Errorf("%s: rule %q needs alert, expr, a severity label and a summary", filepath.Base(path), r.Alert)
			}
			out = append(out, namedQuery{filepath.Base(path) + ": alert " + r.Alert, r.Expr})
		}
	}
	return out
}

// TestMonitoringQueriesUseExportedMetrics runs the proxy for real and checks every query
// of every dashboard and alert rule against what its /metrics exports: each metric must
// exist (a histogram's _bucket, _sum and _count included), each label matcher must name a
// label of that metric, and each by/on list must name labels of the metrics involved.
func TestMonitoringQueriesUseExportedMetrics(t *testing.T) {
	fams := exported(t)
	dashboards, err := filepath.Glob(filepath.Join(monitoringDir, "grafana", "dashboards", "*.json"))
	if err != nil || len(dashboards) < 4 {
		t.Fatalf("dashboards %v, %v: want traffic, routing, batches and Redis", dashboards, err)
	}
	var queries []namedQuery
	for _, d := range dashboards {
		queries = append(queries, dashboardQueries(t, d)...)
	}
	queries = append(queries, ruleQueries(t, filepath.Join(monitoringDir, "alerts.yml"))...)

	used := map[string]bool{}
	for _, q := range queries {
		pq := parseQuery(q.expr)
		if len(pq.selectors) == 0 {
			t.Errorf("%s: %q names no metric", q.where, q.expr)
		}
		known := map[string]bool{}
		for l := range promLabels {
			known[l] = true
		}
		for _, s := range pq.selectors {
			used[s.metric] = true
			fam, ok := lookup(fams, s.metric)
			if !ok {
				if _, allowed := notFromProxy[s.metric]; !allowed {
					t.Errorf("%s: %s is not exported by vllm-proxy (query %q)", q.where, s.metric, q.expr)
				}
				continue
			}
			for l := range fam.labels {
				known[l] = true
			}
			for _, l := range s.labels {
				if !fam.labels[l] && !promLabels[l] {
					t.Errorf("%s: %s has no label %q (it has %v)", q.where, s.metric, l, keys(fam.labels))
				}
			}
		}
		for _, l := range pq.grouping {
			if !known[l] && !allowedOnly(pq) {
				t.Errorf("%s: grouping by %q, a label none of its metrics has (query %q)", q.where, l, q.expr)
			}
		}
	}
	for name, src := range notFromProxy {
		if _, ok := fams[name]; ok {
			t.Logf("%s (%s) is now exported by vllm-proxy: drop it from notFromProxy", name, src)
		}
	}
	// Every family of the proxy's own namespace is on some dashboard or rule.
	for name := range fams {
		if strings.HasPrefix(name, "vllm_proxy_ui_") {
			continue // the /ui dashboard's own request counters
		}
		if strings.HasPrefix(name, "vllm_proxy_") && !usedFamily(used, name) {
			t.Errorf("%s is exported but on no dashboard or alert rule", name)
		}
	}
}

// lookup finds the family of a metric name, mapping a histogram's _bucket, _sum and
// _count series to it.
func lookup(fams map[string]family, name string) (family, bool) {
	if f, ok := fams[name]; ok {
		return f, true
	}
	for _, suf := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suf); ok {
			if f, ok := fams[base]; ok && (f.typ == "histogram" || f.typ == "summary") {
				if suf == "_bucket" {
					f.labels = with(f.labels, "le")
				}
				return f, true
			}
		}
	}
	return family{}, false
}

func usedFamily(used map[string]bool, fam string) bool {
	return used[fam] || used[fam+"_bucket"] || used[fam+"_sum"] || used[fam+"_count"]
}

// allowedOnly reports whether every metric of the query comes from outside the proxy
// (their labels are not known here).
func allowedOnly(q query) bool {
	for _, s := range q.selectors {
		if _, ok := notFromProxy[s.metric]; !ok {
			return false
		}
	}
	return true
}

func with(m map[string]bool, k string) map[string]bool {
	out := map[string]bool{k: true}
	for l := range m {
		out[l] = true
	}
	return out
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// TestPrometheusConfig: the scrape config scrapes both proxies and loads the rules file
// that docker-compose.yml mounts, and Grafana's provisioning points at the mounted
// dashboards directory and the prometheus service.
func TestPrometheusConfig(t *testing.T) {
	var cfg struct {
		RuleFiles     []string `json:"rule_files"`
		ScrapeConfigs []struct {
			JobName       string `json:"job_name"`
			StaticConfigs []struct {
				Targets []string `json:"targets"`
			} `json:"static_configs"`
		} `json:"scrape_configs"`
	}
	readYAML(t, filepath.Join(monitoringDir, "prometheus.yml"), &cfg)
	p, err := loadCompose(t, composeFile, []string{"monitoring"})
	if err != nil {
		t.Fatal(err)
	}
	prom, err := p.GetService("prometheus")
	if err != nil {
		t.Fatal(err)
	}
	mounted := map[string]bool{}
	for _, v := range prom.Volumes {
		mounted[v.Target] = true
	}
	for _, rf := range cfg.RuleFiles {
		if !mounted[rf] {
			t.Errorf("rule file %s is not mounted into the prometheus service", rf)
		}
	}
	var targets []string
	for _, sc := range cfg.ScrapeConfigs {
		if sc.JobName == "vllm-proxy" {
			for _, s := range sc.StaticConfigs {
				targets = append(targets, s.Targets...)
			}
		}
	}
	for _, svc := range []string{"proxy-1", "proxy-2"} {
		if !slices.Contains(targets, svc+":8010") {
			t.Errorf("job vllm-proxy does not scrape %s:8010 (targets %v)", svc, targets)
		}
	}
	var ds struct {
		Datasources []struct {
			UID string `json:"uid"`
			URL string `json:"url"`
		} `json:"datasources"`
	}
	readYAML(t, filepath.Join(monitoringDir, "grafana", "provisioning", "datasources", "prometheus.yml"), &ds)
	if len(ds.Datasources) != 1 || ds.Datasources[0].URL != "http://prometheus:9090" {
		t.Errorf("datasources %+v, want one at http://prometheus:9090", ds.Datasources)
	}
	dashboards, _ := filepath.Glob(filepath.Join(monitoringDir, "grafana", "dashboards", "*.json"))
	for _, d := range dashboards {
		data, _ := os.ReadFile(d)
		if n := strings.Count(string(data), `"uid": "`+ds.Datasources[0].UID+`"`); n == 0 {
			t.Errorf("%s does not use the provisioned datasource uid %q", d, ds.Datasources[0].UID)
		}
	}
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", path, fmt.Errorf("decoding: %w", err))
	}
}
