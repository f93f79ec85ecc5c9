package api

// Flag is one feature flag of an app (GET /api/apps/{app}/flags): on for
// Percent percent of users, sticky per browser.
type Flag struct {
	Name    string `json:"name"`
	Percent int    `json:"percent"`
}

// Flags is an app's feature flags, in name order.
type Flags struct {
	Flags []Flag `json:"flags"`
}

// FlagsChange (POST /api/apps/{app}/flags) sets flags: name → percent
// (0..100; 0 is off for everyone, 100 on for everyone). Flags not named
// keep their setting. Either every flag is valid and all are set, or none.
type FlagsChange struct {
	Flags map[string]int `json:"flags"`
}
