package routing

import "github.com/libp2p/go-libp2p/core/peer"

// InLANTable reports whether p is in the LAN DHT's routing table.
func (r *Router) InLANTable(p peer.ID) bool {
	return r.dht.LAN.RoutingTable().Find(p) != ""
}
