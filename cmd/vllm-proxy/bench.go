package main

import "errors"

// BenchCmd runs the load generator. Placeholder until the load generator lands.
type BenchCmd struct{}

// Run runs the load generator.
func (c *BenchCmd) Run(app *App) error { return errors.New("bench: not built yet") }
