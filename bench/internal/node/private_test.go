package node

import "testing"

func TestCheckPrivateNotCreated(t *testing.T) {
	if err := checkPrivate(t.TempDir()); err != nil {
		t.Errorf("repository not created yet: %v", err)
	}
}
