package ui

import (
	"io/fs"
	"net/http"
	"regexp"
	"strings"
	"testing"
)

// svgNamespace is the one http:// string the assets may hold: the XML namespace name
// of SVG, an identifier that no browser fetches.
const svgNamespace = "http://www.w3.org/2000/svg"

// TestNoExternalURLs reads every embedded file and fails on any http:// or https://
// reference (and on protocol-relative //host URLs in src/href/url()), so the page can
// load nothing from the internet.
func TestNoExternalURLs(t *testing.T) {
	urlRe := regexp.MustCompile(`(?i)https?://[^\s"'<>)]*`)
	protoRel := regexp.MustCompile(`(?i)(src|href|action)\s*=\s*["']?//|url\(\s*["']?//|import\s*\(?\s*["']//|from\s+["']//`)
	n := 0
	err := fs.WalkDir(assetsFS, "assets", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		n++
		b, err := fs.ReadFile(assetsFS, path)
		if err != nil {
			return err
		}
		for _, m := range urlRe.FindAllString(string(b), -1) {
			if m != svgNamespace {
				t.Errorf("%s references %q", path, m)
			}
		}
		if m := protoRel.FindString(string(b)); m != "" {
			t.Errorf("%s has a protocol-relative reference %q", path, m)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 5 {
		t.Fatalf("only %d embedded files checked", n)
	}
}

func TestAssetsServedWithTypes(t *testing.T) {
	st := startStack(t, stackOpts{sims: 1, sim: simInstant()})
	for _, tc := range []struct{ path, ctype, contains string }{
		{"/ui/", "text/html; charset=utf-8", `<script type="module" src="app.js">`},
		{"/ui/app.js", "text/javascript; charset=utf-8", "api/backends"},
		{"/ui/dom.js", "text/javascript; charset=utf-8", "export function h("},
		{"/ui/charts.js", "text/javascript; charset=utf-8", "export function barChart"},
		{"/ui/app.css", "text/css; charset=utf-8", "@media (max-width: 760px)"},
		{"/ui/favicon.svg", "image/svg+xml", "<svg"},
	} {
		resp, body := call(t, http.MethodGet, st.srv.URL+tc.path, nil, "")
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s: status %d", tc.path, resp.StatusCode)
			continue
		}
		if ct := resp.Header.Get("Content-Type"); ct != tc.ctype {
			t.Errorf("GET %s: content type %q, want %q", tc.path, ct, tc.ctype)
		}
		if !strings.Contains(string(body), tc.contains) {
			t.Errorf("GET %s: body lacks %q", tc.path, tc.contains)
		}
		csp := resp.Header.Get("Content-Security-Policy")
		if !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "script-src 'self'") || !strings.Contains(csp, "connect-src 'self'") {
			t.Errorf("GET %s: CSP %q", tc.path, csp)
		}
		if resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET %s: no nosniff", tc.path)
		}
	}
}

func TestAssetRoutes(t *testing.T) {
	st := startStack(t, stackOpts{sims: 1, sim: simInstant()})
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, st.srv.URL+"/ui", nil)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMovedPermanently || resp.Header.Get("Location") != "/ui/" {
		t.Errorf("GET /ui: %d to %q, want 301 to /ui/", resp.StatusCode, resp.Header.Get("Location"))
	}
	for _, p := range []string{"/ui/nope.js", "/ui/assets/app.js", "/ui/%2e%2e/handler.go"} {
		resp, body := call(t, http.MethodGet, st.srv.URL+p, nil, "")
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: status %d, want 404", p, resp.StatusCode)
			continue
		}
		assertOpenAIError(t, p, body, "invalid_request_error")
	}
	r, body := call(t, http.MethodPost, st.srv.URL+"/ui/app.js", nil, "")
	if r.StatusCode != http.StatusMethodNotAllowed || r.Header.Get("Allow") != "GET, HEAD" {
		t.Errorf("POST /ui/app.js: status %d allow %q", r.StatusCode, r.Header.Get("Allow"))
	}
	assertOpenAIError(t, "POST /ui/app.js", body, "invalid_request_error")
	r, _ = call(t, http.MethodHead, st.srv.URL+"/ui/app.css", nil, "")
	if r.StatusCode != http.StatusOK || r.Header.Get("Content-Type") != "text/css; charset=utf-8" {
		t.Errorf("HEAD /ui/app.css: %d %q", r.StatusCode, r.Header.Get("Content-Type"))
	}
}

// TestPageAndScriptAgree checks that every element id the script looks up exists in the
// page, and that every dashboard endpoint the script calls is served.
func TestPageAndScriptAgree(t *testing.T) {
	page, err := fs.ReadFile(assetsFS, "assets/index.html")
	if err != nil {
		t.Fatal(err)
	}
	script, err := fs.ReadFile(assetsFS, "assets/app.js")
	if err != nil {
		t.Fatal(err)
	}
	ids := regexp.MustCompile(`\$\('([a-z0-9-]+)'\)`).FindAllStringSubmatch(string(script), -1)
	if len(ids) < 10 {
		t.Fatalf("found only %d id lookups in app.js", len(ids))
	}
	for _, m := range ids {
		if !strings.Contains(string(page), `id="`+m[1]+`"`) {
			t.Errorf("app.js looks up #%s, which index.html lacks", m[1])
		}
	}
	st := startStack(t, stackOpts{sims: 1, sim: simInstant()})
	calls := regexp.MustCompile(`getJSON\('(api/[a-z]+)'\)`).FindAllStringSubmatch(string(script), -1)
	if len(calls) < 6 {
		t.Fatalf("found only %d endpoint calls in app.js", len(calls))
	}
	for _, m := range calls {
		if r, _ := call(t, http.MethodGet, st.srv.URL+"/ui/"+m[1], nil, ""); r.StatusCode != http.StatusOK {
			t.Errorf("app.js calls %s, which answers %d", m[1], r.StatusCode)
		}
	}
}
