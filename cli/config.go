package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
)

// config is what `plat login` saves.
type config struct {
	URL   string `json:"url"`
	Token string `json:"token"`
	// CAFile is a PEM root to trust for an https URL (plat's local CA).
	CAFile string `json:"ca_file,omitempty"`
}

const loginHint = "not logged in or the token was refused: run `plat login URL --token TOKEN`"

// configPath is $PLAT_CONFIG, else $XDG_CONFIG_HOME/plat/config.json, else
// ~/.config/plat/config.json.
func configPath() (string, error) {
	if p := os.Getenv("PLAT_CONFIG"); p != "" {
		return p, nil
	}
	if dir := os.Getenv("XDG_CONFIG_HOME"); filepath.IsAbs(dir) {
		return filepath.Join(dir, "plat", "config.json"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("cannot find the config file: %v (set PLAT_CONFIG, or PLAT_URL and PLAT_TOKEN)", err)
	}
	return filepath.Join(home, ".config", "plat", "config.json"), nil
}

// readConfigFile reads the saved config; a missing file is an empty config.
func readConfigFile(path string) (config, error) {
	var c config
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return c, fmt.Errorf("reading config: %v", err)
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return c, fmt.Errorf("config file %s is not valid JSON (%v): delete it and run `plat login URL --token TOKEN`", path, err)
	}
	return c, nil
}

// loadConfig reads the config file, then lets PLAT_URL, PLAT_TOKEN and
// PLAT_CA_FILE override it.
func loadConfig() (config, error) {
	var c config
	path, err := configPath()
	if err == nil {
		c, err = readConfigFile(path)
	}
	envURL, envToken := os.Getenv("PLAT_URL"), os.Getenv("PLAT_TOKEN")
	if err != nil && (envURL == "" || envToken == "") {
		return c, err
	}
	if envURL != "" {
		c.URL = envURL
	}
	if envToken != "" {
		c.Token = envToken
	}
	if f := os.Getenv("PLAT_CA_FILE"); f != "" {
		c.CAFile = f
	}
	if c.URL != "" {
		u, err := normalizeURL(c.URL)
		if err != nil {
			return c, err
		}
		c.URL = u
	}
	return c, nil
}

// saveConfig writes c to path with mode 0600, creating its directory with mode 0700.
func saveConfig(path string, c config) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("saving config: %v", err)
	}
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	b = append(b, '\n')
	f, err := os.CreateTemp(dir, ".config-*.json") // created 0600
	if err != nil {
		return fmt.Errorf("saving config: %v", err)
	}
	tmp := f.Name()
	_, err = f.Write(b)
	if err == nil {
		err = f.Chmod(0o600)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("saving config: %v", err)
	}
	return nil
}

// normalizeURL checks a daemon URL, adds http:// when no scheme is given and
// drops a trailing slash.
func normalizeURL(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", errors.New("empty daemon URL")
	}
	if !strings.Contains(s, "://") {
		s = "http://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return "", fmt.Errorf("bad daemon URL %q: %v", s, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", fmt.Errorf("bad daemon URL %q: use http:// or https://", s)
	}
	if u.Host == "" {
		return "", fmt.Errorf("bad daemon URL %q: no host", s)
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", fmt.Errorf("bad daemon URL %q: give just scheme, host and port, e.g. http://example.com:8700", s)
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	return u.String(), nil
}
