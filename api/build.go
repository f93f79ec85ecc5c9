package api

// BuildSettings is an app's build settings as GET/PATCH
// /api/apps/{app}/build answer them: secrets by name only.
type BuildSettings struct {
	Args    map[string]string `json:"args"`
	Secrets []string          `json:"secrets"`
	Target  string            `json:"target"`
	Note    string            `json:"note"`
}

// BuildChange is the body of PATCH /api/apps/{app}/build.
type BuildChange struct {
	SetArgs      map[string]string `json:"set_args,omitempty"`
	UnsetArgs    []string          `json:"unset_args,omitempty"`
	SetSecrets   map[string]string `json:"set_secrets,omitempty"`
	UnsetSecrets []string          `json:"unset_secrets,omitempty"`
	// Target, when not nil, replaces the target; "" builds the last stage.
	Target *string `json:"target,omitempty"`
}

// Empty reports whether c changes nothing.
func (c BuildChange) Empty() bool {
	return len(c.SetArgs)+len(c.UnsetArgs)+len(c.SetSecrets)+len(c.UnsetSecrets) == 0 && c.Target == nil
}
