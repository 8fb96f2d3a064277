package block

import (
	"sync"

	"github.com/ipfs/go-cid"
)

// GetAhead calls get for each of cids, running up to n calls at once ahead
// of the one whose result f is given, and gives f the results in the order
// of cids until f returns false. It returns once every call it started has
// returned. Reads from a disk overlap so, and so does their hashing, while
// the caller still sees them in the order asked.
func GetAhead(cids []cid.Cid, n int, get func(cid.Cid) (Block, error), f func(c cid.Cid, b Block, err error) bool) {
	if n <= 1 || len(cids) <= 1 {
		for _, c := range cids {
			b, err := get(c)
			if !f(c, b, err) {
				return
			}
		}
		return
	}
	type result struct {
		done chan struct{}
		b    Block
		err  error
	}
	res := make([]result, len(cids))
	var wg sync.WaitGroup
	defer wg.Wait()
	started := 0
	for i, c := range cids {
		for ; started < len(cids) && started < i+n; started++ {
			r, c := &res[started], cids[started]
			r.done = make(chan struct{})
			wg.Go(func() {
				defer close(r.done)
				r.b, r.err = get(c)
			})
		}
		<-res[i].done
		if !f(c, res[i].b, res[i].err) {
			return
		}
		res[i] = result{} // the block is the caller's now
	}
}
