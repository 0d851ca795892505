package logging

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/goccy/go-yaml"
)

func TestParseLevel(t *testing.T) {
	tests := []struct {
		in   string
		want slog.Level
	}{
		{"1", LevelLoud}, {"loud", LevelLoud}, {"LOUD", LevelLoud}, {"Loud", LevelLoud},
		{"verbose", LevelVerbose}, {"VERBOSE", LevelVerbose},
		{"debug", LevelDebug}, {"Debug", LevelDebug},
		{"info", LevelInfo}, {"INFO", LevelInfo}, {" info ", LevelInfo},
		{"warning", LevelWarning}, {"Warning", LevelWarning}, {"warn", LevelWarning},
		{"0", LevelError}, {"quiet", LevelError}, {"QUIET", LevelError}, {"error", LevelError}, {"Error", LevelError},
	}
	for _, tt := range tests {
		got, err := ParseLevel(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseLevel(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{"", "2", "-1", "trace", "off", "silent", "informational"} {
		if _, err := ParseLevel(bad); err == nil || !strings.Contains(err.Error(), "want 1/loud") {
			t.Errorf("ParseLevel(%q) error = %v, want one listing the valid values", bad, err)
		}
	}
}

func TestLevelsMatchSlog(t *testing.T) {
	if LevelDebug != slog.LevelDebug || LevelInfo != slog.LevelInfo || LevelWarning != slog.LevelWarn || LevelError != slog.LevelError {
		t.Fatal("Debug/Info/Warning/Error must equal slog's levels")
	}
	ls := Levels()
	for i := 1; i < len(ls); i++ {
		if ls[i-1] >= ls[i] {
			t.Fatalf("levels not increasing: %v", ls)
		}
	}
}

func TestShift(t *testing.T) {
	tests := []struct {
		from  slog.Level
		steps int
		want  slog.Level
	}{
		{LevelInfo, 0, LevelInfo},
		{LevelInfo, 1, LevelDebug},   // -v
		{LevelInfo, 2, LevelVerbose}, // -vv
		{LevelInfo, 3, LevelLoud},    // -vvv
		{LevelInfo, 9, LevelLoud},    // Loud is the ceiling
		{LevelInfo, -1, LevelWarning},
		{LevelInfo, -2, LevelError},
		{LevelInfo, -9, LevelError}, // Error is the floor
		{LevelError, 5, LevelLoud},
		{LevelLoud, -5, LevelError},
		{LevelVerbose, -1, LevelDebug},
		{LevelDebug, 1, LevelVerbose},
		{LevelInfo + 1, 0, LevelWarning}, // in between snaps quieter
		{LevelError + 4, 0, LevelError},
		{LevelLoud - 4, 0, LevelLoud},
	}
	for _, tt := range tests {
		if got := Shift(tt.from, tt.steps); got != tt.want {
			t.Errorf("Shift(%s, %d) = %s, want %s", LevelName(tt.from), tt.steps, LevelName(got), LevelName(tt.want))
		}
	}
}

func TestLevelName(t *testing.T) {
	tests := map[slog.Level]string{
		LevelLoud: "LOUD", LevelVerbose: "VERBOSE", LevelDebug: "DEBUG", LevelInfo: "INFO",
		LevelWarning: "WARNING", LevelError: "ERROR", LevelInfo + 2: "INFO+2", LevelError + 1: "ERROR+1", LevelLoud - 1: "LOUD-1",
	}
	for l, want := range tests {
		if got := LevelName(l); got != want {
			t.Errorf("LevelName(%d) = %q, want %q", l, got, want)
		}
	}
}

func TestParseFormat(t *testing.T) {
	for in, want := range map[string]Format{"txt": FormatTxt, "TXT": FormatTxt, "json": FormatJSON, "Json": FormatJSON, "yaml": FormatYAML, "yml": FormatYAML, "YML": FormatYAML} {
		if got, err := ParseFormat(in); err != nil || got != want {
			t.Errorf("ParseFormat(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "text", "logfmt", "xml"} {
		if _, err := ParseFormat(bad); err == nil {
			t.Errorf("ParseFormat(%q) succeeded", bad)
		}
	}
	if DefaultFormat(true) != FormatTxt || DefaultFormat(false) != FormatJSON {
		t.Error("DefaultFormat: want txt on a terminal, json otherwise")
	}
	var buf bytes.Buffer
	if IsTerminal(&buf) {
		t.Error("a bytes.Buffer is not a terminal")
	}
}

// logAll writes one record at each of the six levels.
func logAll(l *slog.Logger) {
	ctx := context.Background()
	for _, lv := range Levels() {
		l.Log(ctx, lv, "record", "at", LevelName(lv))
	}
}

func jsonLines(t *testing.T, out []byte) []map[string]any {
	t.Helper()
	var recs []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("line is not a JSON object: %q: %v", sc.Text(), err)
		}
		recs = append(recs, m)
	}
	return recs
}

func yamlDocs(t *testing.T, out []byte) []map[string]any {
	t.Helper()
	var recs []map[string]any
	dec := yaml.NewDecoder(bytes.NewReader(out))
	for {
		var m map[string]any
		err := dec.Decode(&m)
		if errors.Is(err, io.EOF) {
			return recs
		}
		if err != nil {
			t.Fatalf("not a YAML stream: %v\n%s", err, out)
		}
		recs = append(recs, m)
	}
}

func TestLevelFiltering(t *testing.T) {
	levels := Levels()
	for i, min := range levels {
		for _, format := range []Format{FormatJSON, FormatYAML, FormatTxt} {
			t.Run(LevelName(min)+"/"+string(format), func(t *testing.T) {
				var buf bytes.Buffer
				logAll(New(&buf, Options{Level: min, Format: format}))
				var got []string
				switch format {
				case FormatJSON:
					for _, r := range jsonLines(t, buf.Bytes()) {
						got = append(got, r["level"].(string))
					}
				case FormatYAML:
					for _, r := range yamlDocs(t, buf.Bytes()) {
						got = append(got, r["level"].(string))
					}
				case FormatTxt:
					for line := range strings.Lines(buf.String()) {
						_, rest, _ := strings.Cut(line, "] [")
						name, _, _ := strings.Cut(rest, "]")
						got = append(got, name)
					}
				}
				var want []string
				for _, l := range levels[i:] {
					want = append(want, LevelName(l))
				}
				if fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("at %s wrote %v, want %v", LevelName(min), got, want)
				}
			})
		}
	}
}

// TestVerbosityStacking is the -v/-q arithmetic applied to a real logger: the
// VLLM_PXY_VERBOSITY base moved by the flags decides what is written.
func TestVerbosityStacking(t *testing.T) {
	tests := []struct {
		base      string
		steps     int // number of -v minus number of -q
		wantCount int // records written out of the six
	}{
		{"info", 0, 3}, {"info", 1, 4}, {"info", 2, 5}, {"info", 3, 6}, {"info", 4, 6},
		{"info", -1, 2}, {"info", -2, 1}, {"info", -5, 1},
		{"quiet", 0, 1}, {"0", 2, 3}, {"1", 0, 6}, {"loud", -3, 3}, {"Verbose", -1, 4},
	}
	for _, tt := range tests {
		base, err := ParseLevel(tt.base)
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		logAll(New(&buf, Options{Level: Shift(base, tt.steps), Format: FormatJSON}))
		if n := len(jsonLines(t, buf.Bytes())); n != tt.wantCount {
			t.Errorf("base %s steps %+d: %d records, want %d", tt.base, tt.steps, n, tt.wantCount)
		}
	}
}

func TestLevelVarChangesAtRunTime(t *testing.T) {
	var lv slog.LevelVar
	var buf bytes.Buffer
	l := New(&buf, Options{Level: &lv, Format: FormatJSON})
	l.Debug("hidden")
	lv.Set(LevelDebug)
	l.Debug("shown")
	recs := jsonLines(t, buf.Bytes())
	if len(recs) != 1 || recs[0]["msg"] != "shown" {
		t.Fatalf("records = %v, want only the one after the level change", recs)
	}
}

var errBase = errors.New("connection refused")

func chainedErr() error {
	return fmt.Errorf("forwarding to backend: %w", errors.Join(fmt.Errorf("dialing: %w", errBase), fs.ErrNotExist))
}

func TestJSONFullDetails(t *testing.T) {
	var buf bytes.Buffer
	l := New(&buf, Options{Level: LevelLoud, Format: FormatJSON}).With(KeyBackend, "http://b1")
	l.Error("forward failed", Err(chainedErr()), slog.Int(KeyStatus, 502))
	l.Info("started", Err(errBase))
	recs := jsonLines(t, buf.Bytes())
	if len(recs) != 2 {
		t.Fatalf("got %d records, want 2", len(recs))
	}
	for _, r := range recs { // not a terminal: every record full
		src, ok := r["source"].(map[string]any)
		if !ok || !strings.HasSuffix(src["file"].(string), "logging_test.go") || src["line"].(float64) <= 0 {
			t.Errorf("record %v lacks the source location", r)
		}
		e, ok := r["err"].(map[string]any)
		if !ok || e["msg"] == "" || len(e["chain"].([]any)) == 0 {
			t.Errorf("record %v lacks the error chain", r)
		}
		if r["backend"] != "http://b1" {
			t.Errorf("record %v lacks the With attribute", r)
		}
	}
	chain := recs[0]["err"].(map[string]any)["chain"].([]any)
	// wrapError, joinError, wrapError, errBase, ErrNotExist.
	if len(chain) != 5 || !strings.Contains(chain[3].(string), "connection refused") || !strings.Contains(chain[4].(string), "file does not exist") {
		t.Errorf("chain = %q, want all five layers", chain)
	}
	if recs[0]["level"] != "ERROR" || recs[0]["status"].(float64) != 502 {
		t.Errorf("record = %v", recs[0])
	}
}

func TestTerminalBriefBelowError(t *testing.T) {
	for _, format := range []Format{FormatJSON, FormatYAML} {
		var buf bytes.Buffer
		l := New(&buf, Options{Level: LevelDebug, Format: format, Terminal: true})
		l.Warn("degraded", Err(chainedErr()))
		l.Error("failed", Err(chainedErr()))
		var recs []map[string]any
		if format == FormatJSON {
			recs = jsonLines(t, buf.Bytes())
		} else {
			recs = yamlDocs(t, buf.Bytes())
		}
		if len(recs) != 2 {
			t.Fatalf("%s: %d records", format, len(recs))
		}
		if _, ok := recs[0]["source"]; ok {
			t.Errorf("%s: brief Warning record has a source: %v", format, recs[0])
		}
		if s, ok := recs[0]["err"].(string); !ok || !strings.Contains(s, "connection refused") {
			t.Errorf("%s: brief record's err = %v, want the message", format, recs[0]["err"])
		}
		if _, ok := recs[1]["source"].(map[string]any); !ok {
			t.Errorf("%s: Error record lacks the source: %v", format, recs[1])
		}
		if e, ok := recs[1]["err"].(map[string]any); !ok || len(e["chain"].([]any)) != 5 {
			t.Errorf("%s: Error record lacks the error chain: %v", format, recs[1])
		}
	}
}

func TestYAMLStream(t *testing.T) {
	var buf bytes.Buffer
	l := New(&buf, Options{Level: LevelLoud, Format: FormatYAML})
	weird := "line1\nline2: \"quoted\" - [x] {y} # not a comment\n---\n..."
	l.Info("hello", "s", weird, "n", 42, "b", true, "f", 1.5, slog.Group("g", "k", "v", "empty", ""))
	l.WithGroup("svc").With("id", 7).Warn("grouped", "x", "0123")
	l.Error("bad", Err(chainedErr()))
	if !bytes.HasPrefix(buf.Bytes(), []byte("---\n")) {
		t.Fatalf("stream does not start with ---:\n%s", buf.String())
	}
	if n := strings.Count(buf.String(), "---\n"); n < 3 {
		t.Fatalf("%d document separators, want at least 3", n)
	}
	recs := yamlDocs(t, buf.Bytes())
	if len(recs) != 3 {
		t.Fatalf("got %d documents, want 3:\n%s", len(recs), buf.String())
	}
	r := recs[0]
	if r["msg"] != "hello" || r["s"] != weird || r["b"] != true || r["f"] != 1.5 || r["level"] != "INFO" {
		t.Errorf("first document = %#v", r)
	}
	if n, ok := r["n"].(uint64); !ok || n != 42 {
		t.Errorf("n = %#v, want 42", r["n"])
	}
	if g := r["g"].(map[string]any); g["k"] != "v" || g["empty"] != "" {
		t.Errorf("group = %#v", g)
	}
	svc, ok := recs[1]["svc"].(map[string]any)
	if !ok || svc["x"] != "0123" || fmt.Sprint(svc["id"]) != "7" {
		t.Errorf("second document = %#v", recs[1])
	}
	if _, ok := recs[2]["err"].(map[string]any)["chain"]; !ok {
		t.Errorf("third document lacks the chain: %#v", recs[2])
	}
}

func TestTxtFormat(t *testing.T) {
	var buf bytes.Buffer
	l := New(&buf, Options{Level: LevelLoud, Format: FormatTxt})
	l.Log(context.Background(), LevelVerbose, "picked", KeyBackend, "http://b1", KeyScore, 0.5)
	l.Error("failed", Err(chainedErr()))
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("got %d lines, want 2:\n%s", len(lines), buf.String())
	}
	if strings.Contains(buf.String(), "\x1b[") {
		t.Errorf("colors when not a terminal: %q", buf.String())
	}
	for _, line := range lines {
		if !strings.HasPrefix(line, "[") || !strings.Contains(line, "[logging/logging_test.go:") {
			t.Errorf("line lacks the bracket format with source: %q", line)
		}
	}
	if !strings.Contains(lines[0], "] [VERBOSE] [") || !strings.Contains(lines[0], "picked backend=http://b1 score=0.5") {
		t.Errorf("line 0 = %q", lines[0])
	}
	if !strings.Contains(lines[1], "] [ERROR] [") || !strings.Contains(lines[1], `err.chain="*fmt.wrapError: forwarding to backend: `) ||
		!strings.Contains(lines[1], ` | *errors.errorString: connection refused | *errors.errorString: file does not exist"`) {
		t.Errorf("line 1 = %q", lines[1])
	}

	buf.Reset()
	l = New(&buf, Options{Level: LevelLoud, Format: FormatTxt, Terminal: true})
	l.Info("brief", Err(chainedErr()))
	l.Error("full", Err(chainedErr()))
	lines = strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != 2 || !strings.Contains(buf.String(), "\x1b[") {
		t.Fatalf("terminal output = %q, want two colored lines", buf.String())
	}
	if strings.Contains(lines[0], "logging_test.go") || strings.Contains(lines[0], "chain") {
		t.Errorf("brief terminal line carries full details: %q", lines[0])
	}
	if !strings.Contains(lines[1], "logging_test.go") || !strings.Contains(lines[1], "chain") {
		t.Errorf("Error terminal line lacks details: %q", lines[1])
	}
}

func TestErrorChain(t *testing.T) {
	if got := ErrorChain(nil); got != nil {
		t.Errorf("ErrorChain(nil) = %v", got)
	}
	got := ErrorChain(chainedErr())
	want := []string{"*fmt.wrapError: forwarding to backend: dialing: connection refused\nfile does not exist",
		"*errors.joinError: dialing: connection refused\nfile does not exist",
		"*fmt.wrapError: dialing: connection refused", "*errors.errorString: connection refused",
		"*errors.errorString: file does not exist"}
	if fmt.Sprintf("%q", got) != fmt.Sprintf("%q", want) {
		t.Errorf("ErrorChain = %q\nwant %q", got, want)
	}
	deep := error(errBase)
	for range 100 {
		deep = fmt.Errorf("w: %w", deep)
	}
	if n := len(ErrorChain(deep)); n != maxChain {
		t.Errorf("deep chain length %d, want the bound %d", n, maxChain)
	}
}

func TestHeadersAndBody(t *testing.T) {
	h := http.Header{"Authorization": {"Bearer sk-123"}, "Content-Type": {"application/json"}, "X-Api-Key": {"k"}, "Accept": {"a", "b"}}
	var buf bytes.Buffer
	l := New(&buf, Options{Level: LevelLoud, Format: FormatJSON})
	big := strings.Repeat("x", LoudBodyLimit+10)
	l.Log(context.Background(), LevelLoud, "request", Headers(KeyHeaders, h), Body(KeyBody, []byte(big)), Body("small", []byte("hi")))
	if strings.Contains(buf.String(), "sk-123") {
		t.Fatalf("Authorization leaked: %s", buf.String())
	}
	r := jsonLines(t, buf.Bytes())[0]
	hd := r["headers"].(map[string]any)
	if hd["Authorization"] != "xxxxx" || hd["X-Api-Key"] != "xxxxx" || hd["Content-Type"] != "application/json" || hd["Accept"] != "a, b" {
		t.Errorf("headers = %v", hd)
	}
	if b := r["body"].(string); !strings.HasSuffix(b, "…(10 more bytes)") || len(b) != LoudBodyLimit+len("…(10 more bytes)") {
		t.Errorf("body not truncated right: len %d tail %q", len(b), b[len(b)-20:])
	}
	if r["small"] != "hi" {
		t.Errorf("small body = %v", r["small"])
	}
}

func TestEnabled(t *testing.T) {
	ctx := context.Background()
	l := New(io.Discard, Options{Level: LevelVerbose})
	if !Enabled(ctx, l, LevelVerbose) || Enabled(ctx, l, LevelLoud) || Enabled(ctx, nil, LevelError) {
		t.Error("Enabled disagrees with the configured level")
	}
}

// TestConcurrentWrites: full and brief handlers share one writer; every line stays whole.
func TestConcurrentWrites(t *testing.T) {
	var buf bytes.Buffer
	l := New(&buf, Options{Level: LevelLoud, Format: FormatJSON, Terminal: true})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 100 {
				if i%2 == 0 {
					l.Error("e", "g", g, "i", i)
				} else {
					l.Info("i", "g", g, "i", i)
				}
			}
		})
	}
	wg.Wait()
	if n := len(jsonLines(t, buf.Bytes())); n != 800 {
		t.Fatalf("%d whole records, want 800", n)
	}
}

func FuzzYAMLRecord(f *testing.F) {
	for _, s := range []string{"plain", "a: b", "- x", "---", "...", "line\nbreak", "\"q\"", "#c", "0123", "true", "~", "{x}", "\t", "é", "\x00"} {
		f.Add(s, s)
	}
	f.Fuzz(func(t *testing.T, msg, val string) {
		var buf bytes.Buffer
		New(&buf, Options{Format: FormatYAML}).Info(msg, "k", val) //nolint:sloglint // the fuzzer varies the message
		recs := yamlDocs(t, buf.Bytes())
		if len(recs) != 1 {
			t.Fatalf("%d documents for one record:\n%s", len(recs), buf.String())
		}
		if utf8.ValidString(msg) && utf8.ValidString(val) && (recs[0]["msg"] != msg || recs[0]["k"] != val) {
			t.Fatalf("values changed: msg %q -> %q, k %q -> %q\n%s", msg, recs[0]["msg"], val, recs[0]["k"], buf.String())
		}
	})
}
