// Package httpurl checks the addresses of the HTTP services bsfs is
// configured with: delegated routers and DNS-over-HTTPS resolvers.
package httpurl

import (
	"errors"
	"net/url"
)

// Parse parses u as the address of an HTTP service: an absolute http or
// https URL with a host, and no user or fragment.
func Parse(u string) (*url.URL, error) {
	p, err := url.Parse(u)
	if err != nil {
		return nil, err
	}
	if p.Scheme != "http" && p.Scheme != "https" {
		return nil, errors.New("want an absolute http or https URL")
	}
	if p.Host == "" {
		return nil, errors.New("no host")
	}
	if p.User != nil || p.Fragment != "" {
		return nil, errors.New("want no user or fragment")
	}
	return p, nil
}
