// Package decision is the serving side of Bitswap: it decides what to send
// to the peers that want blocks from us, and sends it.
//
// # Ledgers
//
// The Engine keeps a ledger per peer: the peer's wantlist (capped at
// Config.MaxWantlistEntries; wants beyond the cap are ignored and counted)
// and the blocks and bytes exchanged with it. A want stays in the ledger
// until it is satisfied: a want-block by its block, a want-have by a HAVE
// or by the block itself. A DONT_HAVE does not satisfy a want, so a block
// that arrives later (BlocksAdded) is still sent. Wants whose CID bsfs
// cannot serve (unsupported hash, oversized, identity) are ignored and
// counted. A ledger is dropped when its peer disconnects.
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
