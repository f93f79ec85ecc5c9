package store

// BuildSettings are what an app's builds take besides the pushed source
// (`plat config:set --build-arg/--build-secret/--build-target`). They are
// read by the next push and change no running release.
type BuildSettings struct {
	// Args are the Dockerfile's ARG values.
	Args map[string]string `json:"args,omitempty"`
	// Secrets are the values of RUN --mount=type=secret,id=KEY. They are
	// stored like config values and given to the build only: the API
	// shows their names, never their values.
	Secrets map[string]string `json:"secrets,omitempty"`
	// Target is the Dockerfile stage to build; empty: the last one.
	Target string `json:"target,omitempty"`
}
