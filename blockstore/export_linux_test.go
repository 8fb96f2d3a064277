package blockstore

// WriteThroughFlatfs makes b write every block through flatfs, as on a
// system without unnamed files.
func WriteThroughFlatfs(b *Blockstore) { b.w.off.Store(true) }

// WroteThroughFlatfs reports whether b writes its blocks through flatfs.
func WroteThroughFlatfs(b *Blockstore) bool { return b.w.off.Load() }

// SpareFileCount is how many unnamed files a writer keeps made ahead.
const SpareFileCount = spareFiles

// SpareFiles reports how many unnamed files b's writer has made ahead.
func SpareFiles(b *Blockstore) int { return len(b.w.spares) }
