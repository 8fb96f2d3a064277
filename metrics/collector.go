package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/bsfs/bsfs/exchange"
)

// exchangeCollector reads the exchange's Stats at each scrape.
type exchangeCollector struct {
	src     Source
	figures []figure
	descs   []*prometheus.Desc
}

// figure is one exported number of exchange.Stats.
type figure struct {
	name, help string
	gauge      bool
	value      func(s exchange.Stats) float64
}

// figures lists what the collector exports.
func figures() []figure {
	return []figure{
		{"blocks_received_total", "Blocks received that this node wanted.", false, func(s exchange.Stats) float64 { return float64(s.BlocksReceived) }},
		{"data_received_bytes_total", "Bytes of blocks received that this node wanted.", false, func(s exchange.Stats) float64 { return float64(s.DataReceived) }},
		{"dup_blocks_received_total", "Blocks received again after they had arrived.", false, func(s exchange.Stats) float64 { return float64(s.DupBlksReceived) }},
		{"dup_data_received_bytes_total", "Bytes of duplicate blocks received.", false, func(s exchange.Stats) float64 { return float64(s.DupDataReceived) }},
		{"unwanted_blocks_total", "Blocks received that nobody here asked for.", false, func(s exchange.Stats) float64 { return float64(s.UnwantedBlocks) }},
		{"http_blocks_received_total", "Blocks received from HTTP gateways (part of blocks_received_total).", false, func(s exchange.Stats) float64 { return float64(s.HTTPBlocksReceived) }},
		{"http_data_received_bytes_total", "Bytes of blocks received from HTTP gateways.", false, func(s exchange.Stats) float64 { return float64(s.HTTPDataReceived) }},
		{"http_gateways", "Connected HTTP gateways.", true, func(s exchange.Stats) float64 { return float64(len(s.HTTPGateways)) }},
		{"invalid_blocks_total", "Blocks received that the store or an HTTP gateway's CID check refused.", false, func(s exchange.Stats) float64 { return float64(s.InvalidBlocks) }},
		{"blocks_sent_total", "Blocks sent to peers.", false, func(s exchange.Stats) float64 { return float64(s.BlocksSent) }},
		{"data_sent_bytes_total", "Bytes of blocks sent to peers.", false, func(s exchange.Stats) float64 { return float64(s.DataSent) }},
		{"messages_received_total", "Bitswap messages received.", false, func(s exchange.Stats) float64 { return float64(s.MessagesReceived) }},
		{"messages_sent_total", "Bitswap messages sent.", false, func(s exchange.Stats) float64 { return float64(s.MessagesSent) }},
		{"wantlist_size", "Blocks this node is fetching.", true, func(s exchange.Stats) float64 { return float64(s.Wantlist) }},
		{"peers", "Connected peers.", true, func(s exchange.Stats) float64 { return float64(len(s.Peers)) }},
	}
}

func newExchangeCollector(src Source) *exchangeCollector {
	c := &exchangeCollector{src: src, figures: figures()}
	for _, f := range c.figures {
		c.descs = append(c.descs, prometheus.NewDesc("bsfs_bitswap_"+f.name, f.help, nil, nil))
	}
	return c
}

func (c *exchangeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
}

func (c *exchangeCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.src.Stats()
	for i, f := range c.figures {
		kind := prometheus.CounterValue
		if f.gauge {
			kind = prometheus.GaugeValue
		}
		ch <- prometheus.MustNewConstMetric(c.descs[i], kind, f.value(s))
	}
}
