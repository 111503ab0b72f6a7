package main

import (
	"context"
	"os/signal"
	"syscall"

	"github.com/kumo-dev/kumo/session"
)

// factory gives commands what they share: IO and the state.
type factory struct {
	IO
	statePath *string // --state; "" for the default
}

// locator finds the state --state names, or the default one.
func (f *factory) locator() session.Locator { return session.Locator{Flag: *f.statePath} }

// interruptible is ctx cancelled by Ctrl-C or SIGTERM, so that long
// builtins stop cleanly and the state records where the run stopped.
func interruptible(ctx context.Context) (context.Context, context.CancelFunc) {
	if ctx == nil {
		ctx = context.Background()
	}
	return signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
}
