package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vllm-proxy/vllm-proxy/logging"
	"github.com/vllm-proxy/vllm-proxy/state"
)

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func backendURLs(s *ServeCmd) []string {
	var out []string
	for _, b := range s.cfg.Backends {
		out = append(out, b.URL)
	}
	return out
}

func TestCLIDefaults(t *testing.T) {
	app, s, code, errs := setupT(t, nil, nil)
	if code != 0 || app == nil {
		t.Fatalf("code %d: %s", code, errs)
	}
	if s == nil {
		t.Fatal("no subcommand should select serve")
	}
	if s.cfg.Listen != ":8010" || app.Redis != "local" || app.RedisURL.Redacted() != "redis://localhost:6379/0" ||
		app.Level.Level() != logging.LevelInfo || app.Format != logging.FormatJSON || s.ShutdownTimeout != 30*time.Second ||
		len(s.cfg.Backends) != 0 || s.Config != "" {
		t.Errorf("defaults: listen %q redis %q level %v format %q shutdown %v backends %v",
			s.cfg.Listen, app.Redis, app.Level.Level(), app.Format, s.ShutdownTimeout, s.cfg.Backends)
	}
}

// TestCLISettings covers every flag and variable, alone and in each precedence order.
func TestCLISettings(t *testing.T) {
	file := writeFile(t, "c.yaml", "listen: 127.0.0.1:7001\nredis: redis://file:6379/3\nbackends:\n  - url: http://file:8000\n    capacity: 4\n")
	tests := []struct {
		name  string
		args  []string
		env   map[string]string
		check func(t *testing.T, app *App, s *ServeCmd)
	}{
		{"--listen", []string{"serve", "--listen", "127.0.0.1:9000"}, nil, func(t *testing.T, _ *App, s *ServeCmd) { eq(t, s.cfg.Listen, "127.0.0.1:9000") }},
		{"VLLM_PXY_LISTEN", nil, map[string]string{"VLLM_PXY_LISTEN": ":9001"}, func(t *testing.T, _ *App, s *ServeCmd) { eq(t, s.cfg.Listen, ":9001") }},
		{"listen flag > env", []string{"--listen", ":9002"}, map[string]string{"VLLM_PXY_LISTEN": ":9001", "VLLM_PXY_CONFIG": file}, func(t *testing.T, _ *App, s *ServeCmd) { eq(t, s.cfg.Listen, ":9002") }},
		{"listen env > file", nil, map[string]string{"VLLM_PXY_LISTEN": ":9001", "VLLM_PXY_CONFIG": file}, func(t *testing.T, _ *App, s *ServeCmd) { eq(t, s.cfg.Listen, ":9001") }},
		{"listen file > default", []string{"--config", file}, nil, func(t *testing.T, _ *App, s *ServeCmd) { eq(t, s.cfg.Listen, "127.0.0.1:7001") }},
		{"--config", []string{"serve", "--config", file}, nil, func(t *testing.T, _ *App, s *ServeCmd) {
			eq(t, s.cfg.path, file)
			eq(t, s.cfg.Backends[0].Capacity, 4)
		}},
		{"VLLM_PXY_CONFIG", nil, map[string]string{"VLLM_PXY_CONFIG": file}, func(t *testing.T, _ *App, s *ServeCmd) { eq(t, s.cfg.path, file) }},
		{"--backend repeated", []string{"--backend", "http://a:8000/", "--backend", "https://b"}, nil, func(t *testing.T, _ *App, s *ServeCmd) {
			eq(t, strings.Join(backendURLs(s), " "), "http://a:8000 https://b")
			eq(t, s.cfg.Backends[1].Capacity, 8)
		}},
		{"VLLM_PXY_BACKENDS", nil, map[string]string{"VLLM_PXY_BACKENDS": "http://a:8000,http://b:8000,"}, func(t *testing.T, _ *App, s *ServeCmd) {
			eq(t, strings.Join(backendURLs(s), " "), "http://a:8000 http://b:8000")
		}},
		{"backends flag > env", []string{"--backend", "http://flag:1"}, map[string]string{"VLLM_PXY_BACKENDS": "http://env:1"}, func(t *testing.T, _ *App, s *ServeCmd) {
			eq(t, strings.Join(backendURLs(s), " "), "http://flag:1")
		}},
		{"backends env > file", []string{"--config", file}, map[string]string{"VLLM_PXY_BACKENDS": "http://env:1"}, func(t *testing.T, _ *App, s *ServeCmd) {
			eq(t, strings.Join(backendURLs(s), " "), "http://env:1")
		}},
		{"backends file", []string{"--config", file}, nil, func(t *testing.T, _ *App, s *ServeCmd) {
			eq(t, strings.Join(backendURLs(s), " "), "http://file:8000")
		}},
		{"--shutdown-timeout", []string{"serve", "--shutdown-timeout", "2s"}, nil, func(t *testing.T, _ *App, s *ServeCmd) { eq(t, s.ShutdownTimeout, 2*time.Second) }},
		{"-R", []string{"-R", "redis://:pw@r:6380/2"}, nil, func(t *testing.T, app *App, _ *ServeCmd) {
			eq(t, app.RedisURL.Redacted(), "redis://:xxxxx@r:6380/2")
			eq(t, app.RedisURL.Password, "pw")
		}},
		{"--redis memory", []string{"--redis", "memory"}, nil, func(t *testing.T, app *App, _ *ServeCmd) { eq(t, app.RedisURL.Mode, state.ModeMemory) }},
		{"VLLM_PXY_REDIS", nil, map[string]string{"VLLM_PXY_REDIS": "unix:///run/r.sock?db=1"}, func(t *testing.T, app *App, _ *ServeCmd) {
			eq(t, app.RedisURL.Redacted(), "unix:///run/r.sock?db=1")
		}},
		{"redis flag > env", []string{"-R", "memory"}, map[string]string{"VLLM_PXY_REDIS": "redis://env:1/0"}, func(t *testing.T, app *App, _ *ServeCmd) { eq(t, app.Redis, "memory") }},
		{"redis env > file", []string{"--config", file}, map[string]string{"VLLM_PXY_REDIS": "redis://env:1/0"}, func(t *testing.T, app *App, _ *ServeCmd) { eq(t, app.Redis, "redis://env:1/0") }},
		{"redis file > default", []string{"--config", file}, nil, func(t *testing.T, app *App, _ *ServeCmd) { eq(t, app.Redis, "redis://file:6379/3") }},
		{"-v", []string{"-v"}, nil, func(t *testing.T, app *App, _ *ServeCmd) { eq(t, app.Level.Level(), logging.LevelDebug) }},
		{"-vv", []string{"-vv"}, nil, func(t *testing.T, app *App, _ *ServeCmd) { eq(t, app.Level.Level(), logging.LevelVerbose) }},
		{"-v -v -v -v", []string{"-v", "-v", "-v", "-v"}, nil, func(t *testing.T, app *App, _ *ServeCmd) { eq(t, app.Level.Level(), logging.LevelLoud) }},
		{"-q", []string{"-q"}, nil, func(t *testing.T, app *App, _ *ServeCmd) { eq(t, app.Level.Level(), logging.LevelWarning) }},
		{"-qqq floor", []string{"-qqq"}, nil, func(t *testing.T, app *App, _ *ServeCmd) { eq(t, app.Level.Level(), logging.LevelError) }},
		{"-vq", []string{"-v", "-q", "-v"}, nil, func(t *testing.T, app *App, _ *ServeCmd) { eq(t, app.Level.Level(), logging.LevelDebug) }},
		{"--verbosity", []string{"--verbosity", "Verbose"}, nil, func(t *testing.T, app *App, _ *ServeCmd) { eq(t, app.Level.Level(), logging.LevelVerbose) }},
		{"VLLM_PXY_VERBOSITY", nil, map[string]string{"VLLM_PXY_VERBOSITY": "0"}, func(t *testing.T, app *App, _ *ServeCmd) { eq(t, app.Level.Level(), logging.LevelError) }},
		{"VLLM_PXY_VERBOSITY + -v", []string{"-vv"}, map[string]string{"VLLM_PXY_VERBOSITY": "quiet"}, func(t *testing.T, app *App, _ *ServeCmd) { eq(t, app.Level.Level(), logging.LevelInfo) }},
		{"VLLM_PXY_VERBOSITY loud + -q", []string{"-q"}, map[string]string{"VLLM_PXY_VERBOSITY": "1"}, func(t *testing.T, app *App, _ *ServeCmd) { eq(t, app.Level.Level(), logging.LevelVerbose) }},
		{"verbosity flag > env", []string{"--verbosity", "debug"}, map[string]string{"VLLM_PXY_VERBOSITY": "error"}, func(t *testing.T, app *App, _ *ServeCmd) { eq(t, app.Level.Level(), logging.LevelDebug) }},
		{"-L yaml", []string{"-L", "yaml"}, nil, func(t *testing.T, app *App, _ *ServeCmd) { eq(t, app.Format, logging.FormatYAML) }},
		{"--log-format yml", []string{"--log-format", "YML"}, nil, func(t *testing.T, app *App, _ *ServeCmd) { eq(t, app.Format, logging.FormatYAML) }},
		{"-L txt", []string{"-L", "txt"}, nil, func(t *testing.T, app *App, _ *ServeCmd) { eq(t, app.Format, logging.FormatTxt) }},
		{"VLLM_PXY_LOGFORMAT", nil, map[string]string{"VLLM_PXY_LOGFORMAT": "txt"}, func(t *testing.T, app *App, _ *ServeCmd) { eq(t, app.Format, logging.FormatTxt) }},
		{"logformat flag > env", []string{"-L", "json"}, map[string]string{"VLLM_PXY_LOGFORMAT": "txt"}, func(t *testing.T, app *App, _ *ServeCmd) { eq(t, app.Format, logging.FormatJSON) }},
		{"globals after serve", []string{"serve", "-R", "memory", "-v"}, nil, func(t *testing.T, app *App, _ *ServeCmd) {
			eq(t, app.RedisURL.Mode, state.ModeMemory)
			eq(t, app.Level.Level(), logging.LevelDebug)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			app, s, code, errs := setupT(t, tt.args, tt.env)
			if code != 0 || app == nil || s == nil {
				t.Fatalf("code %d, stderr:\n%s", code, errs)
			}
			tt.check(t, app, s)
		})
	}
}

func eq[T comparable](t *testing.T, got, want T) {
	t.Helper()
	if got != want {
		t.Errorf("got %v, want %v", got, want)
	}
}

// TestCLIInvalid: every bad value exits 2 before anything starts, naming its source.
func TestCLIInvalid(t *testing.T) {
	badFile := writeFile(t, "bad.yaml", "redis: notaurl\n")
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want []string
	}{
		{"-R notaurl", []string{"-R", "notaurl"}, nil, []string{`-R/--redis "notaurl": invalid redis url: missing scheme`, "example: -R redis://"}},
		{"VLLM_PXY_REDIS notaurl", []string{"serve"}, map[string]string{"VLLM_PXY_REDIS": "notaurl"}, []string{`VLLM_PXY_REDIS="notaurl": invalid redis url`, "example: VLLM_PXY_REDIS=redis://"}},
		{"redis password masked", []string{"-R", "redis://u:hunter2@h:99999"}, nil, []string{`"redis://u:xxxxx@h:99999"`, "port must be a number"}},
		{"config redis", []string{"--config", badFile}, nil, []string{badFile + ":1:8: redis:", "missing scheme", "example: redis: redis://"}},
		{"--listen", []string{"--listen", "nope"}, nil, []string{`--listen: want host:port such as :8010`, `"nope"`}},
		{"VLLM_PXY_LISTEN", nil, map[string]string{"VLLM_PXY_LISTEN": "host:99999"}, []string{`VLLM_PXY_LISTEN: want a port from 0 to 65535`}},
		{"--backend", []string{"--backend", "ftp://x"}, nil, []string{`--backend: want a base URL`, `"ftp://x"`}},
		{"--backend /v1", []string{"--backend", "http://x:8000/v1"}, nil, []string{`without /v1`}},
		{"--backend dup", []string{"--backend", "http://x:1", "--backend", "http://x:1/"}, nil, []string{`duplicate backend "http://x:1"`}},
		{"VLLM_PXY_BACKENDS", nil, map[string]string{"VLLM_PXY_BACKENDS": "http://ok:1,nohost"}, []string{`VLLM_PXY_BACKENDS: want a base URL`, `"nohost"`}},
		{"--shutdown-timeout", []string{"--shutdown-timeout", "soon"}, nil, []string{`--shutdown-timeout`, `soon`}},
		{"--verbosity", []string{"--verbosity", "chatty"}, nil, []string{`--verbosity: unknown verbosity "chatty"`}},
		{"VLLM_PXY_VERBOSITY", nil, map[string]string{"VLLM_PXY_VERBOSITY": "2"}, []string{`VLLM_PXY_VERBOSITY: unknown verbosity "2"`}},
		{"-L", []string{"-L", "xml"}, nil, []string{`-L/--log-format: unknown log format "xml" (want txt, json, yaml or yml)`}},
		{"VLLM_PXY_LOGFORMAT", nil, map[string]string{"VLLM_PXY_LOGFORMAT": "logfmt"}, []string{`VLLM_PXY_LOGFORMAT: unknown log format "logfmt"`}},
		{"--config missing", []string{"--config", "/nonexistent/c.yaml"}, nil, []string{"reading config file", "no such file"}},
		{"unknown flag", []string{"--frobnicate"}, nil, []string{"unknown flag --frobnicate"}},
		{"several at once", []string{"-R", "x", "--listen", "y", "-L", "z"}, nil, []string{"-R/--redis", "--listen:", "-L/--log-format:"}},
		{"bad lease ttl", []string{"--batch-lease-ttl", "0s"}, nil, []string{"--batch-lease-ttl: want a positive duration, got 0s"}},
		{"batch priority below interactive", []string{"--batch-priority", "1", "--chat-completion-priority", "5"}, nil, []string{"the batch priority (1) must not be below the interactive one (5)"}},
		{"bad policy and batch flags", []string{"--policy", "fastest", "--batch-max-concurrent-requests", "0"}, map[string]string{"VLLM_PXY_BACKPRESSURE_POLL_INTERVAL": "-1s"},
			[]string{`--policy: want one of cache_aware`, "--batch-max-concurrent-requests: want at least 1, got 0", "VLLM_PXY_BACKPRESSURE_POLL_INTERVAL: want a positive duration"}},
		{"file and flags at once", []string{"--config", badFile, "--listen", "y", "--verbosity", "z"}, nil, []string{badFile + ":1:8: redis:", "--listen:", "--verbosity:"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, code, errs := setupT(t, tt.args, tt.env)
			if code != exitUsage {
				t.Fatalf("code %d, want 2; stderr:\n%s", code, errs)
			}
			for _, w := range tt.want {
				if !strings.Contains(errs, w) {
					t.Errorf("stderr lacks %q:\n%s", w, errs)
				}
			}
			if strings.Contains(errs, "hunter2") {
				t.Errorf("stderr leaks the password:\n%s", errs)
			}
			for line := range strings.Lines(errs) {
				if !strings.HasPrefix(line, "vllm-proxy: error: ") {
					t.Errorf("line without the error prefix: %q", line)
				}
			}
		})
	}
}

// TestRunNotAURL is the acceptance check through run itself.
func TestRunNotAURL(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"serve"}, envOf(map[string]string{"VLLM_PXY_REDIS": "notaurl"}), &stdout, &stderr)
	if code != 2 || !strings.Contains(stderr.String(), "VLLM_PXY_REDIS") || !strings.Contains(stderr.String(), "missing scheme") {
		t.Fatalf("code %d, stderr %q", code, stderr.String())
	}
	if stdout.Len() != 0 {
		t.Errorf("something started: stdout %q", stdout.String())
	}
}

func TestHelpDocumentsEveryFlag(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"serve", "--help"}} {
		var stdout, stderr bytes.Buffer
		if code := run(context.Background(), args, envOf(nil), &stdout, &stderr); code != 0 {
			t.Fatalf("%v: code %d, stderr %s", args, code, stderr.String())
		}
		out := stdout.String()
		want := []string{"-R, --redis=URL", "Env: VLLM_PXY_REDIS", "Default: local", "--verbosity=LEVEL", "Env: VLLM_PXY_VERBOSITY",
			"Default: info", "-v, --verbose", "-q, --quiet", "-L, --log-format", "Env: VLLM_PXY_LOGFORMAT", "--version"}
		if args[0] == "serve" {
			want = append(want, "--listen=ADDR", "Env: VLLM_PXY_LISTEN", "Default: :8010", "--config=FILE", "Env: VLLM_PXY_CONFIG",
				"--backend=URL", "Env: VLLM_PXY_BACKENDS", "--shutdown-timeout=DURATION", "Default: 30s")
		} else {
			want = append(want, "serve", "sim", "bench")
		}
		flat := strings.Join(strings.Fields(out), " ")
		for _, w := range want {
			if !strings.Contains(flat, w) {
				t.Errorf("%v help lacks %q:\n%s", args, w, out)
			}
		}
	}
}

func TestVersion(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"--version"}, envOf(nil), &stdout, &stderr); code != 0 || !strings.HasPrefix(stdout.String(), "vllm-proxy ") {
		t.Fatalf("code %d stdout %q stderr %q", code, stdout.String(), stderr.String())
	}
}

// TestFormatHelpAppendsEnvAndDefault: flags of other subcommands get their env and
// default named in help even when their help text does not.
func TestFormatHelpAppendsEnvAndDefault(t *testing.T) {
	var cli CLI
	p, err := newParser(&cli, envOf(nil), &bytes.Buffer{}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	for v, m := range p.meta {
		h := p.formatHelp(v)
		for _, e := range m.envs {
			if !strings.Contains(h, e) {
				t.Errorf("help of --%s lacks env %s: %q", v.Name, e, h)
			}
		}
		if m.hasDefault && m.def != "" && !strings.Contains(h, m.def) {
			t.Errorf("help of --%s lacks default %q: %q", v.Name, m.def, h)
		}
	}
}
