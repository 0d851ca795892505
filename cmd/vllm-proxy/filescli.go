package main

import (
	"errors"
	"fmt"
	"text/tabwriter"
)

// FilesCmd groups the file subcommands.
type FilesCmd struct {
	List   FilesListCmd   `cmd:"" help:"List uploaded and result files, newest first."`
	Delete FilesDeleteCmd `cmd:"" help:"Delete files."`
}

// FilesListCmd lists files.
type FilesListCmd struct {
	remoteFlags `embed:""`
}

// Run prints one row per file.
func (l *FilesListCmd) Run(app *App) error {
	c, err := l.client()
	if err != nil {
		return err
	}
	fs, err := c.ListFiles(app.Ctx)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(app.Stdout, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tPURPOSE\tBYTES\tFILENAME\tCREATED\tEXPIRES")
	for _, f := range fs {
		exp := "-"
		if f.ExpiresAt != nil {
			exp = unixTime(*f.ExpiresAt)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\n", f.ID, f.Purpose, f.Bytes, f.Filename, unixTime(f.CreatedAt), exp)
	}
	return tw.Flush()
}

// FilesDeleteCmd deletes files.
type FilesDeleteCmd struct {
	remoteFlags `embed:""`
	IDs         []string `arg:"" name:"file-id" help:"The files to delete."`
}

// Run deletes each file, reporting every failure; any failure exits 1.
func (d *FilesDeleteCmd) Run(app *App) error {
	c, err := d.client()
	if err != nil {
		return err
	}
	var errs []error
	for _, id := range d.IDs {
		if err := c.DeleteFile(app.Ctx, id); err != nil {
			errs = append(errs, fmt.Errorf("deleting %s: %w", id, err))
			continue
		}
		fmt.Fprintf(app.Stdout, "deleted %s\n", id)
	}
	return errors.Join(errs...)
}

// prepare checks the flags before anything is sent; a problem exits 2.
func (l *FilesListCmd) prepare(*App, func(string) source) error { return l.check() }

// prepare checks the flags before anything is sent; a problem exits 2.
func (d *FilesDeleteCmd) prepare(*App, func(string) source) error { return d.check() }
