package deploy

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestDashboardLayout: each dashboard has a unique uid, unique panel ids, panels inside
// Grafana's 24-column grid that do not overlap, and the instance variable every query
// filters on.
func TestDashboardLayout(t *testing.T) {
	dashboards, err := filepath.Glob(filepath.Join(monitoringDir, "grafana", "dashboards", "*.json"))
	if err != nil || len(dashboards) == 0 {
		t.Fatal("no dashboards")
	}
	uids := map[string]string{}
	for _, path := range dashboards {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var d struct {
			UID    string `json:"uid"`
			Panels []struct {
				ID      int    `json:"id"`
				Title   string `json:"title"`
				GridPos struct {
					H, W, X, Y int
				} `json:"gridPos"`
			} `json:"panels"`
			Templating struct {
				List []struct {
					Name string `json:"name"`
				} `json:"list"`
			} `json:"templating"`
		}
		if err := json.Unmarshal(data, &d); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		name := filepath.Base(path)
		if other, dup := uids[d.UID]; dup {
			t.Errorf("%s and %s share uid %q", name, other, d.UID)
		}
		uids[d.UID] = name
		ids := map[int]bool{}
		taken := map[[2]int]string{} // grid cell -> panel title
		for _, p := range d.Panels {
			if ids[p.ID] {
				t.Errorf("%s: panel id %d twice", name, p.ID)
			}
			ids[p.ID] = true
			g := p.GridPos
			if g.W <= 0 || g.H <= 0 || g.X < 0 || g.X+g.W > 24 {
				t.Errorf("%s: panel %q at %+v is outside the 24-column grid", name, p.Title, g)
			}
			if other := occupy(taken, g.X, g.Y, g.W, g.H, p.Title); other != "" {
				t.Errorf("%s: panels %q and %q overlap", name, other, p.Title)
			}
		}
		if !slices.ContainsFunc(d.Templating.List, func(v struct {
			Name string `json:"name"`
		}) bool {
			return v.Name == "instance"
		}) {
			t.Errorf("%s has no instance variable", name)
		}
	}
}

// occupy marks the cells of a w×h panel at (x, y) as title's and returns the title of
// a panel already there, if any.
func occupy(taken map[[2]int]string, x, y, w, h int, title string) string {
	for i := x; i < x+w; i++ {
		for j := y; j < y+h; j++ {
			if other, ok := taken[[2]int{i, j}]; ok {
				return other
			}
			taken[[2]int{i, j}] = title
		}
	}
	return ""
}
