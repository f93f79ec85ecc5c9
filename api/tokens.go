package api

import "time"

// Token is one item of GET /api/tokens: never its secret.
type Token struct {
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
	LastUsed  time.Time `json:"last_used,omitzero"`
	ExpiresAt time.Time `json:"expires_at,omitzero"`
	Expired   bool      `json:"expired"`
	// Current: the request was made with this token (or a session it opened).
	Current bool `json:"current"`
}

// CreateToken is the body of POST /api/tokens.
type CreateToken struct {
	Name      string `json:"name"`
	ExpiresIn string `json:"expires_in,omitempty"` // e.g. "90d"; empty: never
}

// NewToken is a created token, its secret shown this once.
type NewToken struct {
	Name      string    `json:"name"`
	Token     string    `json:"token"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at,omitzero"`
}

// Revoked is the answer of DELETE /api/tokens/{name}.
type Revoked struct {
	Revoked string `json:"revoked"`
	// Current: the token revoked is the one the request was made with.
	Current       bool `json:"current"`
	SessionsEnded int  `json:"sessions_ended"`
	RequestsEnded int  `json:"requests_ended"`
}

// SSHKey is a registered SSH key (GET /api/keys).
type SSHKey struct {
	Name        string    `json:"name"`
	Type        string    `json:"type"`        // e.g. ssh-ed25519
	Fingerprint string    `json:"fingerprint"` // SHA256:base64
	Comment     string    `json:"comment,omitempty"`
	AddedAt     time.Time `json:"added_at"`
}

// AddSSHKey is the body of POST /api/keys.
type AddSSHKey struct {
	Name      string `json:"name"`
	PublicKey string `json:"public_key"` // authorized_keys form
}

// KeyRemoved is the answer of DELETE /api/keys/{name}.
type KeyRemoved struct {
	Removed     string `json:"removed"`
	Fingerprint string `json:"fingerprint"`
}

// SSHInfo is GET /api/ssh: where to push over SSH and the host key to
// check the server against.
type SSHInfo struct {
	Enabled            bool   `json:"enabled"`
	Addr               string `json:"addr,omitempty"`
	Port               int    `json:"port,omitempty"`
	HostKey            string `json:"host_key,omitempty"` // authorized_keys form
	HostKeyFingerprint string `json:"host_key_fingerprint,omitempty"`
}

// LoginLink is the answer of POST /api/login-links.
type LoginLink struct {
	// Path is the dashboard path that logs in, relative to the origin the
	// client reached the API at: the token itself is never in it.
	Path      string    `json:"path"`
	ExpiresAt time.Time `json:"expires_at"`
}
