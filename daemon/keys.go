package daemon

import (
	"crypto/rsa"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"golang.org/x/crypto/ssh"

	"github.com/plat-paas/plat/api"
	"github.com/plat-paas/plat/store"
)

const (
	// maxPublicKeyBytes bounds an uploaded public key: an 8192-bit RSA key
	// in authorized_keys form is about 1.4 KiB.
	maxPublicKeyBytes = 16 << 10
	// minRSABits refuses RSA keys that are too short to be safe.
	minRSABits = 2048
)

// supportedKeyTypes are the public key types SSH pushes authenticate with.
// DSA (dropped by OpenSSH) and certificates are not among them.
var supportedKeyTypes = []string{
	ssh.KeyAlgoED25519, ssh.KeyAlgoECDSA256, ssh.KeyAlgoECDSA384, ssh.KeyAlgoECDSA521,
	ssh.KeyAlgoRSA, ssh.KeyAlgoSKED25519, ssh.KeyAlgoSKECDSA256,
}

// parsePublicKey reads one public key in the form of a .pub file
// ("type base64 [comment]") and says what is wrong with it, if anything.
func parsePublicKey(text string) (ssh.PublicKey, string, error) {
	text = strings.TrimSpace(text)
	switch {
	case text == "":
		return nil, "", errors.New("no public key given: pass the contents of a .pub file, e.g. ~/.ssh/id_ed25519.pub")
	case strings.Contains(text, "PRIVATE KEY"):
		return nil, "", errors.New("this is a private key: never send it anywhere; pass the public key (the .pub file next to it)")
	case len(text) > maxPublicKeyBytes:
		return nil, "", fmt.Errorf("the public key is larger than %d bytes: pass one key from a .pub file", maxPublicKeyBytes)
	}
	key, comment, options, rest, err := ssh.ParseAuthorizedKey([]byte(text))
	if err != nil {
		typ, _, _ := strings.Cut(text, " ")
		if typ == "ssh-dss" {
			return nil, "", errors.New("DSA keys (ssh-dss) are not supported: create an ed25519 key with `ssh-keygen -t ed25519`")
		}
		return nil, "", fmt.Errorf("cannot parse the public key (%v): pass one line of a .pub file, e.g. \"ssh-ed25519 AAAA... you@laptop\"", err)
	}
	switch {
	case len(options) > 0:
		return nil, "", errors.New("authorized_keys options are not supported: pass the key alone, as in its .pub file")
	case len(strings.TrimSpace(string(rest))) > 0:
		return nil, "", errors.New("more than one key given: add them one at a time, each with its own name")
	}
	typ := key.Type()
	if _, ok := key.(*ssh.Certificate); ok || !slices.Contains(supportedKeyTypes, typ) {
		return nil, "", fmt.Errorf("key type %s is not supported: use one of %s (e.g. `ssh-keygen -t ed25519`)", typ, strings.Join(supportedKeyTypes, ", "))
	}
	if ck, ok := key.(ssh.CryptoPublicKey); ok {
		if rk, ok := ck.CryptoPublicKey().(*rsa.PublicKey); ok && rk.N.BitLen() < minRSABits {
			return nil, "", fmt.Errorf("this RSA key has %d bits, fewer than %d: create an ed25519 key with `ssh-keygen -t ed25519`", rk.N.BitLen(), minRSABits)
		}
	}
	return key, comment, nil
}

// newKeyInfo is the API's view of a registered SSH key.
func newKeyInfo(k store.SSHKey) api.SSHKey {
	return api.SSHKey{Name: k.Name, Type: k.Type, Fingerprint: k.Fingerprint, Comment: k.Comment, AddedAt: k.AddedAt}
}

// sshInfo is what clients need to push over SSH: where, and the host key
// to check the server against.
type sshInfo = api.SSHInfo

func (s *server) keyRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/keys", s.listKeys)
	mux.HandleFunc("POST /api/keys", s.addKey)
	mux.HandleFunc("DELETE /api/keys/{name}", s.removeKey)
	mux.HandleFunc("GET /api/ssh", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, http.StatusOK, s.sshInfo) })
}

func (s *server) listKeys(w http.ResponseWriter, r *http.Request) {
	keys, err := s.store.ListSSHKeys()
	if err != nil {
		s.internalError(w, err)
		return
	}
	out := make([]api.SSHKey, 0, len(keys))
	for _, k := range keys {
		out = append(out, newKeyInfo(k))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *server) addKey(w http.ResponseWriter, r *http.Request) {
	var req api.AddSSHKey
	if !readJSON(w, r, &req) {
		return
	}
	if err := store.ValidateKeyName(req.Name); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	key, comment, err := parsePublicKey(req.PublicKey)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	k, err := s.store.AddSSHKey(store.SSHKey{
		Name: req.Name, Type: key.Type(), Fingerprint: ssh.FingerprintSHA256(key),
		PublicKey: strings.TrimSpace(string(ssh.MarshalAuthorizedKey(key))), Comment: comment,
	})
	var taken *store.KeyRegisteredError
	switch {
	case errors.Is(err, store.ErrExists):
		writeError(w, http.StatusConflict, fmt.Sprintf("a key named %q exists: pick another name, or remove it first with `plat keys:remove %s`", req.Name, req.Name))
		return
	case errors.As(err, &taken):
		writeError(w, http.StatusConflict, fmt.Sprintf("this public key is already registered as %q: one key needs only one name (`plat keys` lists them)", taken.Name))
		return
	case err != nil:
		s.internalError(w, err)
		return
	}
	s.log.Info("SSH key added", "name", k.Name, "type", k.Type, "fingerprint", k.Fingerprint)
	writeJSON(w, http.StatusCreated, newKeyInfo(k))
}

func (s *server) removeKey(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	k, err := s.store.RemoveSSHKey(name)
	switch {
	case errors.Is(err, store.ErrNotFound):
		writeError(w, http.StatusNotFound, fmt.Sprintf("no key named %q: list them with `plat keys`", name))
		return
	case err != nil:
		s.internalError(w, err)
		return
	}
	s.log.Info("SSH key removed", "name", k.Name, "fingerprint", k.Fingerprint)
	writeJSON(w, http.StatusOK, api.KeyRemoved{Removed: k.Name, Fingerprint: k.Fingerprint})
}
