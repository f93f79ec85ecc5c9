// Command plat is the whole of plat in one binary: the daemon (`plat daemon`),
// the git hook it installs (`plat hook pre-receive`) and the client CLI.
package main

import (
	"os"

	"github.com/plat-paas/plat/cli"
	"github.com/plat-paas/plat/daemon"
)

func main() {
	daemon.Version = cli.Version
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "daemon":
			os.Exit(daemon.Main(os.Args[2:]))
		case "hook":
			os.Exit(daemon.HookMain(os.Args[2:]))
		}
	}
	os.Exit(cli.Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
