// Package decision is the serving side of Bitswap: it decides what to send
// to the peers that want blocks from us, and sends it.
//
// # Ledgers
//
// The Engine keeps a ledger per peer: the peer's wantlist, capped at
// Config.MaxWantlistEntries, and the blocks and bytes exchanged with it. A
// want stays in the ledger until it is satisfied: a want-block by its
// block, a want-have by a HAVE or by the block itself. A DONT_HAVE does
// not satisfy a want, so a block that arrives later (BlocksAdded) is still
// sent. Wants whose CID bsfs cannot serve (unsupported hash, oversized,
// identity) are ignored and counted. A ledger is dropped when its peer
// disconnects.
//
// # A full wantlist
//
// Clients broadcast want-haves while they fetch, so an honest peer can
// fill its list with wants for blocks we lack. A new want that comes while
// the list is full is looked up like any other, and:
//
//   - if we have its block, it takes the place of the want for a block we
//     lack with the lowest priority (the earliest found lacking among
//     equals), whose queued DONT_HAVE is dropped, and is answered;
//   - if we lack its block, it is ignored: it would only take the place of
//     another want we cannot serve;
//   - if every want held is for a block we have, it is ignored: those are
//     answered and leave the list soon, and the peer may ask again.
//
// Wants that give way are kept in a heap, so a place costs O(log n) and a
// store lookup. Only the first Config.MaxWantlistEntries new wants over the
// cap in one message are looked up; the rest of a flood is ignored unread,
// as Kubo reads no more than that many wants of a message. The cap holds
// at all times: a want gives way before another takes its place.
//
// # Answers
//
//   - want-block: the block if we have it, else DONT_HAVE if the peer asked
//     for one.
//   - want-have: HAVE if we have the block, or the block itself when it is
//     at most Config.InlineHaveLimit bytes; else DONT_HAVE if asked.
//
// # Task queue and workers
//
// Each answer is a task in its peer's queue, ordered by the want's
// priority, then by arrival. A task holds a CID and a block size, never
// block data: a worker reads the data when it builds the message, so the
// data in memory is bounded by the workers, not by the queue.
//
// Peers with tasks are served in turn: a worker takes the peer that has
// waited longest, builds one message from that peer's most urgent tasks
// within Config.MaxMessageBytes (blocks, HAVEs and DONT_HAVEs together),
// sends it, and puts the peer back at the end of the line if it wants more.
// A peer that wants a thousand large blocks therefore delays a newcomer by
// at most one message. A peer being served is out of the line, so at most
// one worker serves a peer at a time: a peer whose sends block ties up one
// worker, and the others go on serving everyone else.
//
// # Concurrency
//
// One mutex guards the ledgers, the task queue and the counters. It is
// never held while calling the Blockstore, the Sender or the logger, so
// MessageReceived never waits for a send. Close cancels the sends in
// progress and waits for the workers.
package decision
