package store

import (
	"errors"
	"path/filepath"
	"slices"
	"testing"
)

func TestDomains(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "plat.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, name := range []string{"a", "b"} {
		if err := s.CreateApp(App{Name: name}); err != nil {
			t.Fatal(err)
		}
	}
	steps := []struct {
		name, op, app, host string
		wantErr             error
		wantDomains         []string // of app after the step
	}{
		{"add", "add", "a", "www.example.com", nil, []string{"www.example.com"}},
		{"add again is a no-op", "add", "a", "www.example.com", nil, []string{"www.example.com"}},
		{"another app cannot take it", "add", "b", "www.example.com", ErrDomainTaken, nil},
		{"an app's domains may nest", "add", "a", "example.com", nil, []string{"www.example.com", "example.com"}},
		{"unknown app", "add", "zz", "x.example.com", ErrNotFound, nil},
		{"not under another app's domain", "add", "b", "shop.www.example.com", ErrDomainTaken, nil},
		{"not under another app's apex", "add", "b", "x.example.com", ErrDomainTaken, nil},
		{"a suffix is not a parent", "add", "b", "notexample.com", nil, []string{"notexample.com"}},
		{"remove", "remove", "a", "www.example.com", nil, []string{"example.com"}},
		{"remove missing", "remove", "a", "www.example.com", ErrNotFound, nil},
		{"still under the apex", "add", "b", "www.example.com", ErrDomainTaken, nil},
		{"remove the apex", "remove", "a", "example.com", nil, nil},
		{"freed domain can move", "add", "b", "www.example.com", nil, []string{"notexample.com", "www.example.com"}},
		{"not above another app's domain", "add", "a", "example.com", ErrDomainTaken, nil},
	}
	for _, st := range steps {
		var a App
		var err error
		if st.op == "add" {
			a, err = s.AddDomain(st.app, st.host)
		} else {
			a, err = s.RemoveDomain(st.app, st.host)
		}
		if st.wantErr != nil {
			if !errors.Is(err, st.wantErr) {
				t.Fatalf("%s: err %v, want %v", st.name, err, st.wantErr)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		got, _ := s.GetApp(st.app)
		if !slices.Equal(a.Domains, st.wantDomains) || !slices.Equal(got.Domains, st.wantDomains) {
			t.Fatalf("%s: domains %v (stored %v), want %v", st.name, a.Domains, got.Domains, st.wantDomains)
		}
	}
}

func TestDomainTakenError(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "plat.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, name := range []string{"a", "b"} {
		if err := s.CreateApp(App{Name: name}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.AddDomain("a", "shop.example.com"); err != nil {
		t.Fatal(err)
	}
	for host, existing := range map[string]string{"shop.example.com": "shop.example.com", "x.shop.example.com": "shop.example.com", "example.com": "shop.example.com"} {
		_, err := s.AddDomain("b", host)
		var taken *DomainTakenError
		if !errors.As(err, &taken) || taken.App != "a" || taken.Domain != host || taken.Existing != existing {
			t.Errorf("AddDomain(b, %s) = %v; want a *DomainTakenError naming a's %s", host, err, existing)
		}
	}
}
