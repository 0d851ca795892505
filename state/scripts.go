package state

import "github.com/redis/go-redis/v9"

// scripts holds the Lua scripts of one Store. Each multi-key invariant is one script;
// its KEYS/ARGV contract is documented next to its source.
type scripts struct {
	inflightSync  *redis.Script
	prefixLookup  *redis.Script
	prefixRecord  *redis.Script
	scrapeClaim   *redis.Script
	scrapeRelease *redis.Script

	byName map[string]*redis.Script
	srcs   map[string]string // name → source
}

func newScripts() *scripts {
	sc := &scripts{byName: map[string]*redis.Script{}, srcs: map[string]string{}}
	sc.inflightSync = sc.add("inflight_sync", inflightSyncSrc)
	sc.prefixLookup = sc.add("prefix_lookup", prefixLookupSrc)
	sc.prefixRecord = sc.add("prefix_record", prefixRecordSrc)
	sc.scrapeClaim = sc.add("scrape_claim", scrapeClaimSrc)
	sc.scrapeRelease = sc.add("scrape_release", scrapeReleaseSrc)
	return sc
}

// add registers a script under name (the metrics label) and returns it.
func (sc *scripts) add(name, src string) *redis.Script {
	s := redis.NewScript(src)
	sc.byName[name] = s
	sc.srcs[name] = src
	return s
}

// names maps each script's SHA1 (sent by EVALSHA) and source (sent by EVAL) to its
// name, for the metrics hook.
func (sc *scripts) names() map[string]string {
	m := make(map[string]string, 2*len(sc.byName))
	for name, s := range sc.byName {
		m[s.Hash()] = name
		m[sc.srcs[name]] = name
	}
	return m
}
