package deploy

import (
	"io"
	"strings"

	"github.com/plat-paas/plat/builder"
	"github.com/plat-paas/plat/store"
)

// generated returns the builder's OnGenerate hook for rel: it shows the
// Dockerfile plat generated for a push without one in the push output
// (and the build log, through out), so the user can commit it and take
// over, and keeps it with the release.
func (rl *Releases) generated(rel store.Release, out io.Writer) func(builder.Generated) {
	return func(g builder.Generated) {
		step(out, "No Dockerfile: detected %s; using this Dockerfile:", g.Detected)
		io.WriteString(indent(out), strings.TrimRight(g.Dockerfile, "\n")+"\n")
		if err := rl.store.UpdateRelease(rel.App, rel.Version, func(r *store.Release) error {
			r.Dockerfile = g.Dockerfile
			return nil
		}); err != nil {
			rl.log.Warn("saving the generated Dockerfile", "app", rel.App, "release", rel.Version, "err", err)
		}
	}
}
