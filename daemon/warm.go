package daemon

import (
	"flag"
	"fmt"

	"github.com/plat-paas/plat/api"
	"github.com/plat-paas/plat/deploy"
	"github.com/plat-paas/plat/store"
)

// warmFlags adds the flags of the warm stage: the standby time and the
// memory-pressure threshold (and where the available memory is read, for
// tests).
func warmFlags(fs *flag.FlagSet, cfg *Config) {
	fs.DurationVar(&cfg.Deploy.Standby, "standby", deploy.DefaultStandby, "how long the previous release stays paused after a deploy, for a rollback in milliseconds (0: off)")
	cfg.Deploy.MinAvailableMemory = deploy.DefaultMinAvailableMemory
	fs.Func("min-available-memory", fmt.Sprintf("below this much available host memory (MemAvailable) standbys are dropped and warm sleeping apps stopped, oldest first, e.g. 512MiB; 0: off (default %s)", formatBytes(deploy.DefaultMinAvailableMemory)), func(s string) error {
		if s == "0" {
			cfg.Deploy.MinAvailableMemory = 0
			return nil
		}
		n, err := parseByteSize(s)
		cfg.Deploy.MinAvailableMemory = n
		return err
	})
	fs.Func("meminfo", "file to read MemAvailable from (default "+deploy.DefaultMeminfo+"; for tests)", func(path string) error {
		cfg.Deploy.AvailableMemory = func() (int64, error) { return deploy.ReadMemAvailable(path) }
		return nil
	})
}

// sleepStage names a sleeping app's stage for the API: warm (paused) or
// cold (stopped); "" while it is awake.
func sleepStage(app store.App) string {
	switch {
	case app.Active == 0 || !app.Asleep:
		return ""
	case app.Warm:
		return api.SleepWarm
	default:
		return api.SleepCold
	}
}

// warmInfo fills in the API's view of app's sleep stage and standby.
func warmInfo(ai *api.App, app store.App) {
	ai.Sleep = sleepStage(app)
	if sb := app.Standby; sb.Release != 0 {
		ai.Standby = &api.Standby{Release: sb.Release, Replicas: len(sb.IDs), Until: sb.Until}
	}
}
