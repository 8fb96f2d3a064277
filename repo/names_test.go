package repo

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestNamesConfig: DNS.Resolvers and the Ipns durations are read with
// Kubo's defaults and refused, naming the key, when they cannot work.
func TestNamesConfig(t *testing.T) {
	_, idJSON := identityJSON(t)
	open := func(t *testing.T, extra string) (*Repo, error) {
		path := t.TempDir()
		writeFile(t, filepath.Join(path, "config"), `{"Identity": `+idJSON+extra+`}`)
		return Open(path)
	}
	r, err := open(t, "")
	if err != nil {
		t.Fatal(err)
	}
	ipns := r.Config.Ipns
	if ipns.Lifetime() != 48*time.Hour || ipns.Republish() != 4*time.Hour || ipns.CacheCap() != 0 || len(r.Config.DNS.Resolvers) != 0 {
		t.Errorf("defaults: lifetime %v, republish %v, cache cap %v, resolvers %v", ipns.Lifetime(), ipns.Republish(), ipns.CacheCap(), r.Config.DNS.Resolvers)
	}
	r.Close()
	r, err = open(t, `, "DNS": {"Resolvers": {".": "http://127.0.0.1:1/dns-query"}}, "Ipns": {"RecordLifetime": "2h", "RepublishPeriod": "1h", "MaxCacheTTL": "1m"}`)
	if err != nil {
		t.Fatal(err)
	}
	if ipns := r.Config.Ipns; ipns.Lifetime() != 2*time.Hour || ipns.Republish() != time.Hour || ipns.CacheCap() != time.Minute {
		t.Errorf("set: %+v", ipns)
	}
	r.Close()
	for key, extra := range map[string]string{
		"DNS.Resolvers":        `, "DNS": {"Resolvers": {".": "dns.example"}}`,
		"Ipns.MaxCacheTTL":     `, "Ipns": {"MaxCacheTTL": "soon"}`,
		"Ipns.RecordLifetime":  `, "Ipns": {"RecordLifetime": "-1h"}`,
		"Ipns.RepublishPeriod": `, "Ipns": {"RecordLifetime": "1h", "RepublishPeriod": "2h"}`,
	} {
		r, err := open(t, extra)
		if err == nil {
			r.Close()
			t.Errorf("Open accepted %s", extra)
			continue
		}
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), key) {
			t.Errorf("Open = %v; want ErrConfig naming %s", err, key)
		}
	}
}
