package routing

import "github.com/libp2p/go-libp2p/core/peer"

// InLANTable reports whether p is in the LAN DHT's routing table.
func (r *Router) InLANTable(p peer.ID) bool {
	return r.dht.LAN.RoutingTable().Find(p) != ""
}

// AddToLANTable puts p in the LAN DHT's routing table, as if the DHT had
// found it, and reports whether it is there.
func (r *Router) AddToLANTable(p peer.ID) (bool, error) {
	return r.dht.LAN.RoutingTable().TryAddPeer(p, true, false)
}
