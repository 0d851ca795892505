package deploy

import (
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestOperationsDocMatchesAlerts: docs/OPERATIONS.md explains exactly the alerts of
// examples/monitoring/alerts.yml, each with a known severity and a parseable "for".
func TestOperationsDocMatchesAlerts(t *testing.T) {
	doc := readText(t, "../docs/OPERATIONS.md")
	documented := map[string]string{}                                            // alert -> severity column
	row := regexp.MustCompile("(?m)^\\| `([A-Za-z]+)` \\|[^|\n]*\\| (\\w+) \\|") // | alert | expression | severity |
	for _, m := range row.FindAllStringSubmatch(doc, -1) {
		documented[m[1]] = m[2]
	}
	var rules struct {
		Groups []struct {
			Rules []struct {
				Alert  string            `json:"alert"`
				For    string            `json:"for"`
				Labels map[string]string `json:"labels"`
			} `json:"rules"`
		} `json:"groups"`
	}
	readYAML(t, filepath.Join(monitoringDir, "alerts.yml"), &rules)
	var names []string
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			names = append(names, r.Alert)
			sev := r.Labels["severity"]
			if sev != "critical" && sev != "warning" {
				t.Errorf("%s: severity %q, want critical or warning", r.Alert, sev)
			}
			if r.For != "" {
				if _, err := time.ParseDuration(r.For); err != nil {
					t.Errorf("%s: for %q: %v", r.Alert, r.For, err)
				}
			}
			switch doc := documented[r.Alert]; {
			case doc == "":
				t.Errorf("alert %s is not in docs/OPERATIONS.md's table", r.Alert)
			case doc != sev:
				t.Errorf("alert %s is %s in alerts.yml but %s in docs/OPERATIONS.md", r.Alert, sev, doc)
			}
		}
	}
	for a := range documented {
		if !slices.Contains(names, a) {
			t.Errorf("docs/OPERATIONS.md documents alert %s, which alerts.yml lacks", a)
		}
	}
	if len(names) < 10 || !strings.Contains(doc, "noeviction") || !strings.Contains(doc, "appendonly") || !strings.Contains(doc, "maxmemory") {
		t.Errorf("%d alerts; OPERATIONS.md must cover appendonly, noeviction and maxmemory", len(names))
	}
}
