package store

import (
	"errors"
	"testing"
)

func TestSSHKeys(t *testing.T) {
	s, _ := newStore(t)
	if keys, err := s.ListSSHKeys(); err != nil || len(keys) != 0 {
		t.Fatalf("ListSSHKeys on a new store = %v, %v; want none", keys, err)
	}
	laptop := SSHKey{Name: "laptop", Type: "ssh-ed25519", Fingerprint: "SHA256:aaa", PublicKey: "ssh-ed25519 AAAA"}
	if _, err := s.AddSSHKey(laptop); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		key  SSHKey
		want error
	}{
		{"same name", SSHKey{Name: "laptop", Type: "ssh-ed25519", Fingerprint: "SHA256:bbb", PublicKey: "ssh-ed25519 BBBB"}, ErrExists},
		{"same key", SSHKey{Name: "ci", Type: "ssh-ed25519", Fingerprint: "SHA256:aaa", PublicKey: "ssh-ed25519 AAAA"}, ErrKeyRegistered},
		{"bad name", SSHKey{Name: "a b", Fingerprint: "SHA256:ccc", PublicKey: "x"}, nil},
		{"no key", SSHKey{Name: "empty"}, nil},
	}
	for _, tt := range tests {
		_, err := s.AddSSHKey(tt.key)
		if err == nil || (tt.want != nil && !errors.Is(err, tt.want)) {
			t.Errorf("%s: AddSSHKey = %v, want %v", tt.name, err, tt.want)
		}
	}
	var reg *KeyRegisteredError
	if _, err := s.AddSSHKey(SSHKey{Name: "ci", Fingerprint: "SHA256:aaa", PublicKey: "x"}); !errors.As(err, &reg) || reg.Name != "laptop" {
		t.Errorf("duplicate key error = %v, want one naming laptop", err)
	}

	k, ok, err := s.SSHKeyByFingerprint("SHA256:aaa")
	if err != nil || !ok || k.Name != "laptop" || k.AddedAt.IsZero() {
		t.Fatalf("SSHKeyByFingerprint = %+v, %v, %v", k, ok, err)
	}
	if _, ok, _ := s.SSHKeyByFingerprint("SHA256:zzz"); ok {
		t.Error("an unknown fingerprint was found")
	}
	if keys, _ := s.ListSSHKeys(); len(keys) != 1 {
		t.Errorf("ListSSHKeys = %v, want laptop only", keys)
	}
	if _, err := s.RemoveSSHKey("laptop"); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := s.SSHKeyByFingerprint("SHA256:aaa"); ok {
		t.Error("a removed key is still found")
	}
	if _, err := s.RemoveSSHKey("laptop"); !errors.Is(err, ErrNotFound) {
		t.Errorf("removing it again = %v, want ErrNotFound", err)
	}
}
