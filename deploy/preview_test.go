package deploy

import (
	"errors"
	"strings"
	"testing"
)

func TestSlugBranch(t *testing.T) {
	long := "feature/" + strings.Repeat("very-long-branch-name-", 4)
	tests := []struct {
		branch, want string
	}{
		{"feature-x", "feature-x"},
		{"feature/Login_Page", "feature-login-page"},
		{"Fix--Bug__42", "fix-bug-42"},
		{"-dash-", "dash"},
		{"release/2.1", "release-2-1"},
		{"v1beta", "v1beta"},
		{"v2/x", "v2-x"},
		{"ÜberFeature", "berfeature"},
	}
	for _, tt := range tests {
		got, err := SlugBranch(tt.branch)
		if err != nil || got != tt.want {
			t.Errorf("SlugBranch(%q) = %q, %v; want %q", tt.branch, got, err, tt.want)
		}
	}
	// Too long: cut, with a hash of the whole name, distinct per branch.
	a, err := SlugBranch(long + "a")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := SlugBranch(long + "b")
	if len(a) > MaxPreviewLabel || !hostLabelRE.MatchString(a) || a == b || !strings.HasPrefix(a, "feature-very-long") {
		t.Errorf("long branch slugs %q and %q: want distinct DNS labels of at most %d characters", a, b, MaxPreviewLabel)
	}
	if again, _ := SlugBranch(long + "a"); again != a {
		t.Errorf("slug is not stable: %q then %q", a, again)
	}
}

func TestSlugBranchRefuses(t *testing.T) {
	for _, branch := range []string{"v2", "V17", "www", "WWW", "plat", "api", "///", "_"} {
		if s, err := SlugBranch(branch); !errors.Is(err, ErrInvalidPreview) {
			t.Errorf("SlugBranch(%q) = %q, %v; want ErrInvalidPreview", branch, s, err)
		}
	}
}

func TestPreviewName(t *testing.T) {
	tests := []struct {
		name, host string
		preview    bool
	}{
		{"myapp", "myapp", false},
		{PreviewName("myapp", "feature-x"), "feature-x.myapp", true},
	}
	for _, tt := range tests {
		if got := HostLabel(tt.name); got != tt.host {
			t.Errorf("HostLabel(%q) = %q, want %q", tt.name, got, tt.host)
		}
		if _, _, ok := SplitPreviewName(tt.name); ok != tt.preview {
			t.Errorf("SplitPreviewName(%q) ok = %v", tt.name, ok)
		}
		// A preview's record name can never be a real app's name.
		if tt.preview && ValidateAppName(tt.name) == nil {
			t.Errorf("%q is a valid app name: previews could collide with apps", tt.name)
		}
	}
}
