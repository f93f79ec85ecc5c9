package deploy

import (
	"testing"

	"github.com/plat-paas/plat/engine"
)

// TestAppSubnetFitsBlueGreen: a deploy (and the network migration) runs
// the old and the new release side by side on the app's network, so its
// subnet must hold twice the most replicas an app may have.
func TestAppSubnetFitsBlueGreen(t *testing.T) {
	if need, have := 2*MaxReplicas, engine.AppSubnetHosts(); need > have {
		t.Errorf("an app network (/%d) holds %d containers; a blue-green deploy of %d replicas needs %d",
			engine.AppSubnetBits, have, MaxReplicas, need)
	}
}
