// Command plat-cli is plat's client alone: what the daemon serves at
// /install-cli for laptops (installed as `plat`). Without the daemon it
// leaves out the Docker SDK and TLS automation, so it cross-builds
// faster and is under half the size (about 7 MB stripped); the server runs ./cmd/plat.
package main

import (
	"fmt"
	"os"

	"github.com/plat-paas/plat/cli"
)

func main() {
	if len(os.Args) > 1 && (os.Args[1] == "daemon" || os.Args[1] == "hook") {
		fmt.Fprintf(os.Stderr, "plat: this plat is the client only (installed from a daemon's /install-cli); `plat %s` runs on the server, where install.sh builds the whole of plat\n", os.Args[1])
		os.Exit(2)
	}
	os.Exit(cli.Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
