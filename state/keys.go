package state

import "strconv"

// Key layout. This proxy is the only user of its Redis database, so keys carry no prefix.
// Keys that one script touches together share a hash tag {…} so they live in one cluster
// slot. Every key name is built by a function in this file; nothing else spells one.
//
//	epoch                      string   random value; replaced when Redis loses its data
//	                                     (FLUSHALL, restart without persistence), which
//	                                     makes every replica republish its local state
//	{inflight}:<backend>       hash     replica id → "<deadline ms> <class=n;…>": each
//	                                     replica's in-flight share, valid until the
//	                                     deadline (Redis time); one tag so one script
//	                                     call syncs every backend
//	prefix:{<root>}:<hash>     hash     backend → deadline (Redis time, ms): who holds
//	                                     prefix block <hash> of the chain rooted at block
//	                                     <root> (16 hex digits each); the tag keeps a
//	                                     chain in one slot for the lookup script
//	scrape:lease:<backend>     string   replica id holding the right to scrape, with TTL
//	scrape:data:<backend>      string   the latest shared scrape payload, with TTL
//
// Pub/sub channels (nothing stored):
//
//	bus:<topic>                messages between replicas ("<len(id)>:<id><msg>", Bus)

// epochKey holds the data epoch probed by the health loop.
func epochKey() string { return "epoch" }

// inflightKey holds every replica's in-flight share for one backend. All of them share the
// {inflight} tag: the heartbeat script touches every backend's key in one call.
func inflightKey(backend string) string { return "{inflight}:" + backend }

// prefixKey holds the owners of one prefix block; root is the chain's first block hash.
func prefixKey(root, hash uint64) string {
	b := make([]byte, 0, 48)
	b = append(b, "prefix:{"...)
	b = appendHex16(b, root)
	b = append(b, "}:"...)
	b = appendHex16(b, hash)
	return string(b)
}

// appendHex16 appends h as exactly 16 lower-case hex digits.
func appendHex16(b []byte, h uint64) []byte {
	s := strconv.FormatUint(h, 16)
	for range 16 - len(s) {
		b = append(b, '0')
	}
	return append(b, s...)
}

// scrapeLeaseKey holds the replica that scrapes backend.
func scrapeLeaseKey(backend string) string { return "scrape:lease:" + backend }

// scrapeDataKey holds the latest shared scrape of backend.
func scrapeDataKey(backend string) string { return "scrape:data:" + backend }

// busChannel is the pub/sub channel of a Bus topic.
func busChannel(topic string) string { return "bus:" + topic }
