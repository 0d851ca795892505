package main

import (
	"fmt"
	"strings"
)

// fileSetting is a value from the config file with where it was.
type fileSetting struct {
	value string
	src   source
}

// overrides are the serve flags and env variables that beat the config file. They are
// kept so that a reload of the file keeps them.
type overrides struct {
	listen      string
	listenSrc   *source
	backends    []string
	backendsSrc *source
	// settings are the other flag and env values, each checking and setting one key.
	settings []setting
}

// setting is one flag or env value laid on the config: set reports a bad value.
type setting struct {
	src source
	set func(cfg *fileConfig) error
}

// apply lays the overrides on cfg, reporting every bad value by the flag or variable it
// came from.
func (o overrides) apply(cfg *fileConfig) configErrors {
	var errs configErrors
	if o.listenSrc != nil {
		if err := checkListen(o.listen); err != nil {
			errs = append(errs, configError{where: o.listenSrc.name, msg: err.Error()})
		}
		cfg.Listen = o.listen
	}
	if o.backendsSrc != nil {
		var bs []backendConfig
		seen := map[string]bool{}
		for _, raw := range o.backends {
			raw = strings.TrimSpace(raw)
			if raw == "" {
				continue // "a,,b" or a trailing comma in VLLM_PXY_BACKENDS
			}
			norm, err := checkBackendURL(raw)
			switch {
			case err != nil:
				errs = append(errs, configError{where: o.backendsSrc.name, msg: err.Error()})
			case seen[norm]:
				errs = append(errs, configError{where: o.backendsSrc.name, msg: fmt.Sprintf("duplicate backend %q", norm)})
			default:
				seen[norm] = true
				bs = append(bs, backendConfig{URL: norm, Capacity: defaultCapacity})
			}
		}
		cfg.Backends = bs
	}
	for _, st := range o.settings {
		if err := st.set(cfg); err != nil {
			errs = append(errs, configError{where: st.src.name, msg: err.Error()})
		}
	}
	if b, c := cfg.Batch.BatchPriority, cfg.Batch.ChatCompletionPriority; b < c && len(o.settings) > 0 {
		errs = append(errs, configError{where: "--batch-priority/--chat-completion-priority",
			msg: fmt.Sprintf("the batch priority (%d) must not be below the interactive one (%d): lower is served earlier", b, c)})
	}
	return errs
}
