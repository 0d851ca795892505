package main

import "errors"

// SimCmd runs the simulator. Placeholder until the simulator lands.
type SimCmd struct{}

// Run runs the simulator.
func (c *SimCmd) Run(app *App) error { return errors.New("sim: not built yet") }
