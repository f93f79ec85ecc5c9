package deploy

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Branch previews: a push of a branch other than main runs that branch as
// its own app record, named PreviewName(app, label) and served at
// <label>.<app>.<domain>. The record's name joins the two with
// PreviewSep, a character real app names cannot hold (appNameRE), so the
// names derived from it (containers, network, image repository, locks,
// logs) never collide with a real app's, while Docker accepts all of them.
const (
	PreviewSep = "_"
	// DefaultPreviewIdle is how long a preview runs without requests before
	// it sleeps (it wakes on its host).
	DefaultPreviewIdle = 15 * time.Minute
	// DefaultMaxPreviews is how many previews one app may have at once.
	DefaultMaxPreviews = 5
	// MaxPreviewLabel caps a preview's host label; longer slugs are cut
	// and end in a hash of the branch name, so they stay distinct.
	MaxPreviewLabel = 40
	previewHashLen  = 6
	// ProductionBranch is the branch whose pushes deploy the app itself.
	ProductionBranch = "main"
)

// ErrInvalidPreview: a branch cannot be previewed under the label asked for.
var ErrInvalidPreview = errors.New("invalid preview branch")

var (
	releaseLabelRE = regexp.MustCompile(`^v[0-9]+$`)
	nonLabelRE     = regexp.MustCompile(`[^a-z0-9]+`)
)

// PreviewName is the app record name of app's preview with host label.
func PreviewName(app, label string) string { return app + PreviewSep + label }

// SplitPreviewName returns the app and label of a preview record's name;
// ok is false for a real app's name.
func SplitPreviewName(name string) (app, label string, ok bool) {
	return strings.Cut(name, PreviewSep)
}

// HostLabel is the part of an app record's default host before the base
// domain: "myapp" for an app, "feature-x.myapp" for its preview.
func HostLabel(name string) string {
	if app, label, ok := SplitPreviewName(name); ok {
		return label + "." + app
	}
	return name
}

// SlugBranch turns a branch name into its preview's host label: lower
// case, every run of other characters one dash, no dash at either end,
// at most MaxPreviewLabel characters (a cut label ends in a hash of the
// whole branch name). It refuses a branch that leaves no letter or digit
// and a label plat keeps for itself (CheckPreviewLabel).
func SlugBranch(branch string) (string, error) {
	s := strings.Trim(nonLabelRE.ReplaceAllString(strings.ToLower(branch), "-"), "-")
	if s == "" {
		return "", fmt.Errorf("%w %q: the name has no letter or digit to make a host name of; rename the branch", ErrInvalidPreview, branch)
	}
	if len(s) > MaxPreviewLabel {
		sum := sha256.Sum256([]byte(branch))
		s = strings.TrimRight(s[:MaxPreviewLabel-previewHashLen-1], "-") + "-" + hex.EncodeToString(sum[:])[:previewHashLen]
	}
	if err := CheckPreviewLabel(s); err != nil {
		return "", fmt.Errorf("%w (branch %q)", err, branch)
	}
	return s, nil
}

// CheckPreviewLabel refuses host labels under an app that plat serves
// something else at: vN (a release's own host), www, and the names
// reserved for apps.
func CheckPreviewLabel(label string) error {
	if releaseLabelRE.MatchString(label) || slices.Contains(reservedNames, label) {
		return fmt.Errorf("%w: %q is reserved (vN hosts serve releases; %s are plat's), so a branch cannot preview there; rename the branch", ErrInvalidPreview, label, strings.Join(reservedNames, ", "))
	}
	return nil
}
