package router

// Stats is a snapshot of an app's traffic, for the autoscaler and the idle
// timer.
type Stats struct {
	Backends int // backends routed now
	// InFlight counts the requests in flight that the app is working on
	// (incl. upgraded connections); it leaves out those still receiving
	// their body from the client (Receiving): a client that stalls its
	// upload must not scale the app up or keep it awake.
	InFlight  int64
	Receiving int64
	// Requests counts requests started, growing monotonically while the
	// route's backends stay the same: any change of the number means
	// activity. Requests that arrived while the app was asleep count too.
	// A request retried on another backend counts once per backend.
	Requests uint64
	Asleep   bool
}

// Stats returns the traffic of app's route; false if no route has app.
func (r *Router) Stats(app string) (Stats, bool) {
	rt, ok := r.table.Load().apps[app]
	if !ok {
		return Stats{}, false
	}
	s := Stats{Backends: len(rt.backends), Requests: rt.asleepRequests.Load(), Asleep: rt.asleep}
	for _, b := range rt.backends {
		s.InFlight += b.Load()
		s.Receiving += b.Receiving()
		s.Requests += b.Requests()
	}
	return s, true
}
