package repo

import (
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestHTTPRetrievalConfig(t *testing.T) {
	_, idJSON := identityJSON(t)
	open := func(t *testing.T, section string) (*Repo, error) {
		t.Helper()
		path := t.TempDir()
		text := `{"Identity": ` + idJSON
		if section != "" {
			text += `, "HTTPRetrieval": ` + section
		}
		writeFile(t, filepath.Join(path, "config"), text+`}`)
		return Open(path)
	}
	t.Run("Defaults", func(t *testing.T) {
		r, err := open(t, "")
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		h := r.Config.HTTPRetrieval
		if !h.On() || h.MaxBlockBytes() != 2<<20 || len(h.Allowlist) != 0 || len(h.Denylist) != 0 || h.NumWorkers != 0 {
			t.Fatalf("defaults %+v: want on, 2 MiB, no lists", h)
		}
	})
	t.Run("Explicit", func(t *testing.T) {
		r, err := open(t, `{"Enabled": false, "Allowlist": ["gw.example", "127.0.0.1"], "Denylist": ["[::1]"], "NumWorkers": 4, "MaxBlockSize": "1MiB"}`)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		h := r.Config.HTTPRetrieval
		if h.On() || h.MaxBlockBytes() != 1<<20 || !slices.Equal(h.Allowlist, []string{"gw.example", "127.0.0.1"}) || h.NumWorkers != 4 {
			t.Fatalf("config %+v", h)
		}
	})
	for name, tc := range map[string]struct{ section, key string }{
		"TooLarge":       {`{"MaxBlockSize": "3MiB"}`, "HTTPRetrieval.MaxBlockSize"},
		"NotASize":       {`{"MaxBlockSize": "big"}`, "HTTPRetrieval.MaxBlockSize"},
		"ZeroSize":       {`{"MaxBlockSize": "0"}`, "HTTPRetrieval.MaxBlockSize"},
		"NoneSize":       {`{"MaxBlockSize": "none"}`, "HTTPRetrieval.MaxBlockSize"},
		"Workers":        {`{"NumWorkers": -1}`, "HTTPRetrieval.NumWorkers"},
		"AllowURL":       {`{"Allowlist": ["https://gw.example"]}`, "HTTPRetrieval.Allowlist"},
		"DenyPort":       {`{"Denylist": ["gw.example:443"]}`, "HTTPRetrieval.Denylist"},
		"DenyEmpty":      {`{"Denylist": [""]}`, "HTTPRetrieval.Denylist"},
		"EnabledNotBool": {`{"Enabled": "yes"}`, "HTTPRetrieval.Enabled"},
	} {
		t.Run(name, func(t *testing.T) {
			r, err := open(t, tc.section)
			if err == nil {
				r.Close()
				t.Fatal("Open accepted the config")
			}
			if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.key) {
				t.Fatalf("Open = %v; want ErrConfig naming %s", err, tc.key)
			}
		})
	}
}
