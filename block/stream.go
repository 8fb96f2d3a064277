package block

// Stream carries the answer to one request for many blocks (a GetBlocks
// call): each block once, in the order they become available. Its channel
// is closed once every block has been delivered or the request stopped
// short, and Err then says why it stopped.
type Stream struct {
	c   chan Block
	err error // set before c is closed
}

// NewStream returns an open stream. Its producer delivers with Send and
// ends it with Close.
func NewStream() *Stream { return &Stream{c: make(chan Block)} }

// C returns the channel the blocks come on.
func (s *Stream) C() <-chan Block { return s.c }

// Err returns, once C is closed, why the stream stopped before delivering
// every block asked for (nil if it did not). It must not be called before.
func (s *Stream) Err() error { return s.err }

// Send delivers b, unless done is closed first: it then reports false.
func (s *Stream) Send(b Block, done <-chan struct{}) bool {
	select {
	case s.c <- b:
		return true
	case <-done:
		return false
	}
}

// Close ends the stream; err is why it stopped short, nil if it delivered
// every block. The producer calls it once, after its last Send.
func (s *Stream) Close(err error) {
	s.err = err
	close(s.c)
}
