package state

// Key layout. This proxy is the only user of its Redis database, so keys carry no prefix.
// Keys that one script touches together share a hash tag {…} so they live in one cluster
// slot. Every key name is built by a function in this file; nothing else spells one.
//
//	epoch                      string   random value; replaced when Redis loses its data
//	                                     (FLUSHALL, restart without persistence), which
//	                                     makes every replica republish its local state

// epochKey holds the data epoch probed by the health loop.
func epochKey() string { return "epoch" }
