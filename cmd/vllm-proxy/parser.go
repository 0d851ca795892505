package main

import (
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"

	"github.com/alecthomas/kong"

	"github.com/vllm-proxy/vllm-proxy/logging"
	"github.com/vllm-proxy/vllm-proxy/state"
)

// kong reads os.LookupEnv and applies defaults itself, which would make run untestable
// with an injected environment and would hide where a value came from, and the config
// file must slot in between env and default. So after kong builds the model (and has
// interpolated ${env} and ${default} into the help), cliParser moves every flag's env
// names and default into its own table, and gives them back to kong as a Resolver that
// reads the injected environment and records each value's source. Kong still validates
// (enums, required flags) as usual.

// flagMeta is a flag's env names and default, taken out of kong's model.
type flagMeta struct {
	envs       []string
	def        string
	hasDefault bool
}

// source says where a setting's value came from, for error messages.
type source struct {
	kind string // "flag", "env", "file", "default"
	name string // "-R/--redis", "VLLM_PXY_REDIS", "config.yaml:3:8", ""
}

func (s source) String() string {
	switch s.kind {
	case "default":
		return "the default"
	case "file":
		return s.name
	}
	return s.name
}

type cliParser struct {
	parser  *kong.Kong
	meta    map[*kong.Value]flagMeta
	getenv  func(string) (string, bool)
	exited  *int
	src     map[string]source // flag name -> where its value came from
	envErrs []error           // bad env values, all reported
}

func newParser(cli *CLI, getenv func(string) (string, bool), stdout, stderr io.Writer) (*cliParser, error) {
	p := &cliParser{meta: map[*kong.Value]flagMeta{}, src: map[string]source{}, getenv: getenv}
	k, err := kong.New(cli,
		kong.Name("vllm-proxy"),
		kong.Description("Makes many vLLM servers look like one OpenAI-compatible server."),
		kong.Writers(stdout, stderr),
		kong.Exit(func(code int) {
			if p.exited == nil {
				p.exited = &code
			}
		}),
		kong.Vars{"version": "vllm-proxy " + version()},
		kong.ValueFormatter(p.formatHelp),
		kong.ConfigureHelp(kong.HelpOptions{Compact: true, WrapUpperBound: 100}),
		kong.Resolvers(p),
	)
	if err != nil {
		return nil, err
	}
	var visit func(n *kong.Node)
	visit = func(n *kong.Node) {
		for _, f := range n.Flags {
			v := f.Value
			p.meta[v] = flagMeta{envs: v.Tag.Envs, def: v.Default, hasDefault: v.HasDefault}
			v.Tag.Envs, v.HasDefault = nil, false
		}
		for _, c := range n.Children {
			visit(c)
		}
	}
	visit(k.Model.Node)
	p.parser = k
	return p, nil
}

// formatHelp appends the env names and default to a flag's help unless the help already
// names them (flags of other subcommands need not spell them out).
func (p *cliParser) formatHelp(v *kong.Value) string {
	help := v.Help
	m := p.meta[v]
	var extra []string
	for _, e := range m.envs {
		if !strings.Contains(help, e) {
			extra = append(extra, "env "+e)
		}
	}
	if m.hasDefault && m.def != "" && !strings.Contains(help, "Default") {
		extra = append(extra, "default "+m.def)
	}
	if len(extra) > 0 {
		help = strings.TrimSuffix(help, ".") + " (" + strings.Join(extra, ", ") + ")."
	}
	return help
}

// flagName is how messages name a flag: "-R/--redis" or "--listen".
func flagName(f *kong.Flag) string {
	if f.Short != 0 {
		return "-" + string(f.Short) + "/--" + f.Name
	}
	return "--" + f.Name
}

// Resolve is the kong.Resolver that gives a flag argv did not set its value from the
// injected environment, else its default, and records which. A bad env value is kept in
// envErrs (so that every one is reported) and the flag left unset.
func (p *cliParser) Resolve(_ *kong.Context, _ *kong.Path, f *kong.Flag) (any, error) {
	m := p.meta[f.Value]
	for _, e := range m.envs {
		val, ok := p.getenv(e)
		if !ok {
			continue
		}
		scratch := reflect.New(f.Target.Type()).Elem()
		if err := f.Parse(kong.ScanFromTokens(kong.Token{Type: kong.FlagValueToken, Value: val}), scratch); err != nil {
			p.envErrs = append(p.envErrs, fmt.Errorf("%s=%q: %w", e, state.RedactString(val), err))
			return nil, nil
		}
		p.src[f.Name] = source{"env", e}
		return val, nil
	}
	if m.hasDefault {
		p.src[f.Name] = source{"default", ""}
		return m.def, nil
	}
	return nil, nil
}

// Validate is part of kong.Resolver.
func (p *cliParser) Validate(*kong.Application) error { return nil }

// preparer is implemented by subcommands that check and merge their settings (e.g. a
// config file) before anything starts; an error exits 2. src tells where each flag's
// value came from (kind "flag", "env", "default", or "" when unset), so a config file
// can slot in between env and default.
type preparer interface {
	prepare(app *App, src func(flag string) source) error
}

// resolve turns the parsed command line into app: the command's preparer (config file),
// the logger, and the Redis URL. It reports every problem it finds.
func (p *cliParser) resolve(kctx *kong.Context, app *App, cli *CLI) error {
	for _, f := range kctx.Flags() {
		if _, ok := p.src[f.Name]; !ok && f.Set {
			p.src[f.Name] = source{"flag", flagName(f)}
		}
	}
	var errs []error
	if pr, ok := selected(kctx).(preparer); ok {
		if err := pr.prepare(app, func(name string) source { return p.src[name] }); err != nil {
			errs = append(errs, err)
		}
	}
	if err := resolveLogging(app, cli, p.src); err != nil {
		errs = append(errs, err)
	}
	if err := resolveRedis(app, cli.Redis, p.src["redis"]); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	app.Log = logging.New(app.Stdout, logging.Options{Level: app.Level, Format: app.Format, Terminal: logging.IsTerminal(app.Stdout)})
	return nil
}

// selected is the Run target of the chosen command.
func selected(kctx *kong.Context) any {
	if n := kctx.Selected(); n != nil && n.Target.IsValid() && n.Target.CanAddr() {
		return n.Target.Addr().Interface()
	}
	return nil
}

func resolveLogging(app *App, cli *CLI, src map[string]source) error {
	var errs []error
	base, err := logging.ParseLevel(cli.Verbosity)
	if err != nil {
		errs = append(errs, fmt.Errorf("%s: %w", whereOr(src["verbosity"], "--verbosity"), err))
	}
	app.Level.Set(logging.Shift(base, cli.Verbose-cli.Quiet))
	app.Format = logging.DefaultFormat(logging.IsTerminal(app.Stdout))
	if cli.LogFormat != "" {
		if app.Format, err = logging.ParseFormat(cli.LogFormat); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", whereOr(src["log-format"], "-L/--log-format"), err))
		}
	}
	return errors.Join(errs...)
}

func whereOr(s source, def string) string {
	if s.name != "" {
		return s.name
	}
	return def
}

// resolveRedis picks -R: flag > env > config file > "local", and parses it. The message
// names where the value came from, shows it with the password masked, and gives an example.
func resolveRedis(app *App, val string, src source) error {
	if (src.kind == "default" || src.kind == "") && app.redisFile != nil {
		val, src = app.redisFile.value, app.redisFile.src
	}
	u, err := state.ParseURL(val)
	if err != nil {
		example := "-R " + state.URLExample
		switch src.kind {
		case "env":
			example = src.name + "=" + state.URLExample
		case "file":
			example = "redis: " + state.URLExample
		}
		shown := whereOr(src, "-R/--redis") + " " + strconv.Quote(state.RedactString(val))
		if src.kind == "env" {
			shown = src.name + "=" + strconv.Quote(state.RedactString(val))
		}
		return fmt.Errorf("%s: %w; example: %s", shown, err, example)
	}
	app.Redis, app.RedisURL = val, u
	return nil
}
