package deploy

import (
	"regexp"
	"slices"
	"strings"
	"testing"
)

// selector is one metric a query names, with the label names its matchers use.
type selector struct {
	metric string
	labels []string
}

// query is what the checks need from a PromQL expression: the metrics it names (with
// their matchers' labels) and the labels of its by/without/on/ignoring lists. It is a
// small lexer, not a PromQL parser: enough for the expressions of these dashboards and
// rules, and tested below so that a misspelt metric cannot slip through.
type query struct {
	selectors []selector
	grouping  []string
}

var (
	reGrafanaVar = regexp.MustCompile(`\$\{[^}]*\}|\$\w+`)
	reString     = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|` + "`[^`]*`")
	reRange      = regexp.MustCompile(`\[[^\]]*\]`)
	reNumber     = regexp.MustCompile(`\b\d[\w.]*`)
	reGrouping   = regexp.MustCompile(`\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)`)
	reIdent      = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*`)
	reMatcher    = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)`)
	reLabelVals  = regexp.MustCompile(`^\s*label_values\(\s*(?:([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s*,)?\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\)\s*$`)
)

// keywords are PromQL words that are not metric names (functions and aggregations are
// recognised by the parenthesis that follows them).
var keywords = map[string]bool{
	"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
	"bool": true, "and": true, "or": true, "unless": true, "offset": true, "inf": true, "nan": true, "atan2": true,
}

// parseQuery reads expr; a Grafana label_values(metric{...}, label) query names metric.
func parseQuery(expr string) query {
	expr = reGrafanaVar.ReplaceAllString(expr, "1m")
	if m := reLabelVals.FindStringSubmatch(expr); m != nil {
		if m[1] == "" {
			return query{grouping: []string{m[3]}}
		}
		return query{selectors: []selector{{metric: m[1], labels: matcherLabels(m[2])}}, grouping: []string{m[3]}}
	}
	expr = reString.ReplaceAllString(expr, `""`)
	expr = reRange.ReplaceAllString(expr, "")
	var q query
	expr = reGrouping.ReplaceAllStringFunc(expr, func(s string) string {
		list := reGrouping.FindStringSubmatch(s)[2]
		for _, l := range strings.Split(list, ",") {
			if l = strings.TrimSpace(l); l != "" {
				q.grouping = append(q.grouping, l)
			}
		}
		return " "
	})
	expr = reNumber.ReplaceAllString(expr, " ")
	for i := 0; i < len(expr); {
		loc := reIdent.FindStringIndex(expr[i:])
		if loc == nil {
			break
		}
		start, end := i+loc[0], i+loc[1]
		word := expr[start:end]
		rest := strings.TrimLeft(expr[end:], " \t\n")
		i = end
		if inBraces(expr, start) || keywords[word] || strings.HasPrefix(rest, "(") {
			continue
		}
		sel := selector{metric: word}
		if strings.HasPrefix(rest, "{") {
			if j := strings.Index(rest, "}"); j > 0 {
				sel.labels = matcherLabels(rest[:j+1])
			}
		}
		q.selectors = append(q.selectors, sel)
	}
	return q
}

// inBraces reports whether position i of s is inside {...}.
func inBraces(s string, i int) bool {
	return strings.LastIndex(s[:i], "{") > strings.LastIndex(s[:i], "}")
}

func matcherLabels(m string) []string {
	var out []string
	for _, g := range reMatcher.FindAllStringSubmatch(m, -1) {
		out = append(out, g[1])
	}
	return out
}

func TestParseQuery(t *testing.T) {
	for _, tc := range []struct {
		expr     string
		metrics  []string
		labels   []string // matcher labels, all selectors
		grouping []string
	}{
		{`sum by (model) (rate(vllm_proxy_requests_total{instance=~"$instance",code=~"5.."}[$__rate_interval]))`,
			[]string{"vllm_proxy_requests_total"}, []string{"instance", "code"}, []string{"model"}},
		{`histogram_quantile(0.95, sum by (le, backend) (rate(x_bucket{a="}{"}[5m]))) > 5`, []string{"x_bucket"}, []string{"a"}, []string{"le", "backend"}},
		{`sum(a) / sum(b) > 0.05 and on (instance) c == 0`, []string{"a", "b", "c"}, nil, []string{"instance"}},
		{`up{job="vllm-proxy"} == 0`, []string{"up"}, []string{"job"}, nil},
		{`vllm_proxy_typo_total offset 5m`, []string{"vllm_proxy_typo_total"}, nil, nil},
		{`label_values(vllm_proxy_requests_total{instance=~"$instance"}, model)`, []string{"vllm_proxy_requests_total"}, []string{"instance"}, []string{"model"}},
		{`label_values(instance)`, nil, nil, []string{"instance"}},
		{`process_resident_memory_bytes / 1048576`, []string{"process_resident_memory_bytes"}, nil, nil},
	} {
		q := parseQuery(tc.expr)
		var metrics, labels []string
		for _, s := range q.selectors {
			metrics = append(metrics, s.metric)
			labels = append(labels, s.labels...)
		}
		if !slices.Equal(metrics, tc.metrics) || !slices.Equal(labels, tc.labels) || !slices.Equal(q.grouping, tc.grouping) {
			t.Errorf("%s:\n metrics %v labels %v grouping %v\n want    %v labels %v grouping %v",
				tc.expr, metrics, labels, q.grouping, tc.metrics, tc.labels, tc.grouping)
		}
	}
}
