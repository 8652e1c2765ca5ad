// Command beans-slurm evaluates audio language models on BEANS-Zero, locally or on SLURM.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/beans-slurm/beans-slurm/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, os.Args[1:], cli.StdIO())
	stop()
	os.Exit(code)
}
