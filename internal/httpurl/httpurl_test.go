package httpurl

import "testing"

func TestParse(t *testing.T) {
	for u, ok := range map[string]bool{
		"http://127.0.0.1:8080":              true,
		"https://example.test/dns-query?x=1": true,
		"ftp://example.test":                 false,
		"example.test/path":                  false,
		"http://":                            false,
		"https://user@example.test":          false,
		"https://example.test/#frag":         false,
		"://bad":                             false,
	} {
		if _, err := Parse(u); (err == nil) != ok {
			t.Errorf("Parse(%q): err = %v, want ok %v", u, err, ok)
		}
	}
}
