package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/bsfs/bsfs/block"
	"github.com/bsfs/bsfs/exchange"
	"github.com/bsfs/bsfs/internal/names"
)

// ErrBadRequest marks errors in what the client sent, answered with 400.
var ErrBadRequest = errors.New("bad request")

func badRequest(err error) error { return fmt.Errorf("%w: %w", ErrBadRequest, err) }

func cidArg(w http.ResponseWriter, r *http.Request) (cid.Cid, bool) {
	c, err := cid.Decode(r.URL.Query().Get("arg"))
	if err != nil {
		writeError(w, badRequest(fmt.Errorf("invalid CID: %w", err)))
		return cid.Undef, false
	}
	return c, true
}

func peerArg(w http.ResponseWriter, r *http.Request) (peer.ID, bool) {
	p, err := peer.Decode(r.URL.Query().Get("arg"))
	if err != nil {
		writeError(w, badRequest(fmt.Errorf("invalid peer ID: %w", err)))
		return "", false
	}
	return p, true
}

// prefixFromQuery reads the CID prefix block/put hashes with.
func prefixFromQuery(r *http.Request) (cid.Prefix, error) {
	q := r.URL.Query()
	var vals [4]uint64
	for i, name := range []string{"version", "codec", "mhtype", "mhlen"} {
		v, err := strconv.ParseInt(q.Get(name), 10, 64)
		if err != nil {
			return cid.Prefix{}, fmt.Errorf("query parameter %s: %w", name, err)
		}
		vals[i] = uint64(v)
	}
	return cid.Prefix{Version: vals[0], Codec: vals[1], MhType: vals[2], MhLength: int(int64(vals[3]))}, nil
}

func prefixQuery(p cid.Prefix) string {
	return fmt.Sprintf("version=%d&codec=%d&mhtype=%d&mhlen=%d", p.Version, p.Codec, p.MhType, p.MhLength)
}

func cidStrings(cids []cid.Cid) []string {
	out := make([]string, len(cids))
	for i, c := range cids {
		out[i] = c.String()
	}
	return out
}

// answerJSON answers with v as JSON, or with err.
func answerJSON(w http.ResponseWriter, v any, err error) {
	if err != nil {
		writeError(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

// writeError answers with err's status and err's message on one line.
func writeError(w http.ResponseWriter, err error) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(errorStatus(err))
	io.WriteString(w, oneLine(err.Error())+"\n")
}

// errorStatus is the HTTP status that tells err.
func errorStatus(err error) int {
	switch {
	case errors.Is(err, ErrBadRequest), errors.Is(err, block.ErrUnsupportedCID), errors.Is(err, block.ErrCIDTooLong):
		return http.StatusBadRequest
	case errors.Is(err, block.ErrTooLarge):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, block.ErrNotFound), errors.Is(err, names.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, ErrNoDaemon), errors.Is(err, exchange.ErrClosed):
		return http.StatusServiceUnavailable
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return http.StatusGatewayTimeout
	}
	return http.StatusInternalServerError
}

// errorTrailer is the trailer of a blocks/get answer that stopped short:
// the status and message an error answer would have, "404 get block ...".
const errorTrailer = "Bsfs-Error"

// trailerError is the error h's errorTrailer tells, nil if none.
func trailerError(h http.Header) error {
	v := h.Get(errorTrailer)
	if v == "" {
		return nil
	}
	code, msg, _ := strings.Cut(v, " ")
	status, err := strconv.Atoi(code)
	if err != nil {
		return fmt.Errorf("daemon API: %s trailer %q", errorTrailer, v)
	}
	return &apiError{status: status, msg: msg}
}

// oneLine joins a multi-line message into one line.
func oneLine(s string) string {
	s = strings.TrimSpace(s)
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", "; ")), " ")
}

// apiError is an error answer of the daemon.
type apiError struct {
	status int
	msg    string
}

// Error is the daemon's message.
func (e *apiError) Error() string { return e.msg }

// Unwrap maps the status back to the errors commands test for.
func (e *apiError) Unwrap() error {
	switch e.status {
	case http.StatusNotFound:
		return block.ErrNotFound
	case http.StatusGatewayTimeout:
		return context.DeadlineExceeded
	case http.StatusRequestEntityTooLarge:
		return block.ErrTooLarge
	}
	return nil
}
