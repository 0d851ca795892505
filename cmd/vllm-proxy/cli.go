package main

// CLI is the kong command tree.
type CLI struct {
	Redis string `short:"R" env:"VLLM_PXY_REDIS" default:"local" help:"Redis URL, 'local' or 'memory'."`

	Serve ServeCmd `cmd:"" default:"withargs" help:"Run the proxy."`
	Sim   SimCmd   `cmd:"" help:"Run the vLLM simulator."`
	Bench BenchCmd `cmd:"" help:"Run the load generator."`
}

// ServeCmd runs the proxy.
type ServeCmd struct{}

// Run runs the proxy.
func (c *ServeCmd) Run(app *App) error { return nil }
