package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/boxo/ipns"

	"github.com/bsfs/bsfs/internal/kubotest"
	"github.com/bsfs/bsfs/internal/poll"
	"github.com/bsfs/bsfs/internal/routingtest"
)

// The republishing schedule of the tests below: short enough for a test,
// and a record is republished several times before it would expire.
const (
	testRepublishPeriod = time.Second
	testRecordLifetime  = 6 * time.Second
)

// republishIpns is the Ipns section of the config giving that schedule.
var republishIpns = map[string]any{
	"RepublishPeriod": testRepublishPeriod.String(),
	"RecordLifetime":  testRecordLifetime.String(),
}

// heldRecord is what a router hands out for a name: a record whose
// signature was checked, its validity, sequence number and value.
type heldRecord struct {
	eol   time.Time
	seq   uint64
	value string
}

func (h heldRecord) String() string {
	return fmt.Sprintf("sequence %d, value %s, valid until %s", h.seq, h.value, h.eol.Format(time.RFC3339Nano))
}

// parseHeld checks that raw is a valid record of name and returns it.
func parseHeld(raw []byte, name string) (heldRecord, error) {
	n, err := ipns.NameFromString(name)
	if err != nil {
		return heldRecord{}, err
	}
	rec, err := ipns.UnmarshalRecord(raw)
	if err != nil {
		return heldRecord{}, fmt.Errorf("record of %s: %w", name, err)
	}
	if err := ipns.ValidateWithName(rec, n); err != nil {
		return heldRecord{}, fmt.Errorf("record of %s: %w", name, err)
	}
	eol, err := rec.Validity()
	if err != nil {
		return heldRecord{}, err
	}
	seq, err := rec.Sequence()
	if err != nil {
		return heldRecord{}, err
	}
	v, err := rec.Value()
	if err != nil {
		return heldRecord{}, err
	}
	return heldRecord{eol: eol, seq: seq, value: v.String()}, nil
}

// mustHeld is parseHeld failing the test.
func mustHeld(t *testing.T, raw []byte, name string) heldRecord {
	t.Helper()
	h, err := parseHeld(raw, name)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// checkRepublished checks that got, seen at seen, is prev published again:
// the same sequence number and value, valid for RecordLifetime from a
// moment shortly before it was seen, and seen before prev expired.
func checkRepublished(t *testing.T, prev, got heldRecord, seen time.Time) {
	t.Helper()
	if got.seq != prev.seq || got.value != prev.value {
		t.Errorf("republished record: sequence %d, value %s; want %d, %s as published", got.seq, got.value, prev.seq, prev.value)
	}
	if !got.eol.After(prev.eol) {
		t.Errorf("republished record valid until %v, want later than the previous %v", got.eol, prev.eol)
	}
	if !seen.Before(prev.eol) {
		t.Errorf("record republished at %v, after the previous one expired at %v", seen, prev.eol)
	}
	if lo, hi := seen.Add(testRecordLifetime-2*testRepublishPeriod), seen.Add(testRecordLifetime); got.eol.Before(lo) || got.eol.After(hi) {
		t.Errorf("republished record valid until %v, want Ipns.RecordLifetime (%v) from the republish, between %v and %v", got.eol, testRecordLifetime, lo, hi)
	}
}

// waitRepublished polls rt until its record of name is no longer prev's
// and returns the new one, checked, and when it was seen.
func waitRepublished(t *testing.T, rt *routingtest.Router, name string, prev heldRecord) (heldRecord, time.Time) {
	t.Helper()
	var got heldRecord
	var seen time.Time
	poll.UntilNil(t, testRecordLifetime, func() error {
		h, err := parseHeld(rt.IPNS(name), name)
		seen = time.Now()
		if err != nil {
			return fmt.Errorf("the router's %w; the previous one was valid until %v", err, prev.eol)
		}
		if h == prev {
			return fmt.Errorf("the router still holds the record of %s valid until %v: not republished", name, prev.eol)
		}
		got = h
		return nil
	})
	checkRepublished(t, prev, got, seen)
	return got, seen
}

// publishName runs `bsfs name publish` of value with key and returns the
// name published.
func publishName(t *testing.T, repo, key, value string) string {
	t.Helper()
	out := strings.TrimSpace(ok(t, repo, "", "name", "publish", "--key", key, value))
	m := publishedLine.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("name publish --key %s printed %q", key, out)
	}
	return m[1]
}

// warnedNotRepublished reports whether log has a line saying the record of
// key was not republished.
func warnedNotRepublished(log, key string) bool {
	for _, l := range lines(log) {
		if strings.Contains(l, "WARN IPNS record not republished") && strings.Contains(l, " key="+key+" ") {
			return true
		}
	}
	return false
}

// TestNameRepublish: a daemon with Ipns.RepublishPeriod 1s and
// Ipns.RecordLifetime 6s, publishing to a delegated router only,
// publishes the record of a name again before it expires, with the same
// sequence number and value and a validity RecordLifetime from then. Once
// one key is removed from the keystore and the stored record of another
// is made unreadable, a republish logs a line naming each of them, leaves
// their records at the router alone and still republishes the node's
// own, which comes after them.
func TestNameRepublish(t *testing.T) {
	rt := routingtest.NewRouter(t, false)
	repo := t.TempDir()
	setRouting(t, repo, map[string]any{"Type": "delegated", "DelegatedRouters": []string{rt.URL}})
	editConfig(t, repo, map[string]any{"Ipns": republishIpns})
	// Named to come before "self", so that the republish meets them first.
	ok(t, repo, "", "key", "gen", "a-removed")
	ok(t, repo, "", "key", "gen", "b-unreadable")
	d := startDaemon(t, repo)
	defer d.stopClean(t)

	// Publishing needs no content: the value is a CID nobody has.
	c := absentCID(t, "republished")
	start := time.Now()
	self := publishName(t, repo, "self", c.String())
	// Read at once: a republish may replace it any time now.
	first := mustHeld(t, rt.IPNS(self), self)
	end := time.Now()
	if first.value != "/ipfs/"+c.String() {
		t.Fatalf("published record points at %s, want /ipfs/%s", first.value, c)
	}
	if first.eol.Before(start.Add(testRecordLifetime)) || first.eol.After(end.Add(testRecordLifetime)) {
		t.Fatalf("published record valid until %v, want Ipns.RecordLifetime (%v) from the publish", first.eol, testRecordLifetime)
	}
	waitRepublished(t, rt, self, first)
	removed := publishName(t, repo, "a-removed", c.String())
	unreadable := publishName(t, repo, "b-unreadable", c.String())

	if err := os.Remove(filepath.Join(repo, "keystore", "a-removed")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(repo, "ipns", "b-unreadable"), []byte("not a record"), 0o600); err != nil {
		t.Fatal(err)
	}
	removedRaw, unreadableRaw := rt.IPNS(removed), rt.IPNS(unreadable)
	poll.Until(t, testRecordLifetime, "log lines naming the keys not republished", func() bool {
		log := d.stderr.String()
		return warnedNotRepublished(log, "a-removed") && warnedNotRepublished(log, "b-unreadable")
	})
	// Every republish from now on meets both keys before "self".
	last := mustHeld(t, rt.IPNS(self), self)
	waitRepublished(t, rt, self, last)
	// Their records at the router are still the last ones they had
	// before they broke.
	for _, k := range []struct {
		name string
		raw  []byte
	}{{removed, removedRaw}, {unreadable, unreadableRaw}} {
		prev, now := mustHeld(t, k.raw, k.name), mustHeld(t, rt.IPNS(k.name), k.name)
		if now != prev {
			t.Errorf("the router's record of %s changed after its key broke: %v, was %v", k.name, now, prev)
		}
	}
	// Publishing anew with the key whose last record is unreadable would
	// restart its sequence at 0, which the router would refuse: it fails,
	// naming the file.
	line := fails(t, repo, "", "name", "publish", "--key", "b-unreadable", absentCID(t, "after the damage").String())
	if want := filepath.Join("ipns", "b-unreadable"); !strings.Contains(line, want) || !strings.Contains(line, "unreadable") {
		t.Errorf("publish with an unreadable last record: %q, want an error naming %s", line, want)
	}
}

// TestNameRepublishDHT: a daemon on a DHT of one Kubo server, with
// Ipns.RepublishPeriod 1s and Ipns.RecordLifetime 6s, publishes its
// name's record to the DHT again before it expires; the Kubo server then
// holds the record with the same sequence number and value and a later
// validity, read once the daemon has stopped so that the record is the
// server's own.
func TestNameRepublishDHT(t *testing.T) {
	kubo := kubotest.StartDHTNetwork(t, 1)[0]
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	repo := initDHTRepo(t, kubo.Addrs())
	editConfig(t, repo, map[string]any{"Ipns": republishIpns})
	d := startDaemon(t, repo)
	waitConnected(t, repo, kubo.ID(), true)

	self := publishName(t, repo, "self", absentCID(t, "republished on the DHT").String())
	out, err := kubo.Run(ctx, "routing", "get", "/ipns/"+self)
	if err != nil {
		t.Fatalf("ipfs routing get /ipns/%s: %v: %s", self, err, out)
	}
	first := mustHeld(t, out, self)
	// The record read may be a republished one, whose line is yet to be
	// logged: the second republish logged from now on is signed after
	// the first is logged, so after that record.
	republished := "INFO IPNS record republished name=" + self + " "
	before := strings.Count(d.stderr.String(), republished)
	var seen time.Time
	poll.Until(t, testRecordLifetime, "two more log lines saying the record of "+self+" was republished", func() bool {
		seen = time.Now()
		return strings.Count(d.stderr.String(), republished) >= before+2
	})
	d.stopClean(t)
	if out, err = kubo.Run(ctx, "routing", "get", "/ipns/"+self); err != nil {
		t.Fatalf("ipfs routing get /ipns/%s after the daemon stopped: %v: %s", self, err, out)
	}
	got := mustHeld(t, out, self)
	if got.seq != first.seq || got.value != first.value || !got.eol.After(first.eol) {
		t.Errorf("the Kubo server holds a record with %v; want %v, valid for longer", got, first)
	}
	if !seen.Before(first.eol) {
		t.Errorf("record republished at %v, after it expired at %v", seen, first.eol)
	}
}
