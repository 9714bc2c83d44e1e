package clusteraccess

import (
	"container/list"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"
)

type kind uint8

const (
	kindCluster kind = iota + 1
	kindRegistry
	kindRepository
)

// key names one answer. The org is part of it so that two organizations
// never share an entry, whatever their clusters or hosts are called.
type key struct {
	kind kind
	org  string
	name string // cluster, registry host or repository credential
	url  string // repository URL; the server checks it against the credential
}

type refKind uint8

const (
	refCredential refKind = iota + 1
	refCluster
	// refMissing marks a "no registry login" answer, which no credential
	// id names: any change in its organization may have created the login.
	refMissing
)

// ref names something an answer was built from, so a change event can find
// every answer it makes stale.
type ref struct {
	org  string
	kind refKind
	id   string
}

type entry struct {
	key     key
	val     proto.Message
	expires time.Time
	refs    []ref
	elem    *list.Element
}

// call is one RPC in flight, shared by every caller missing the same key.
type call struct {
	done chan struct{}
	// epoch is the cache epoch the RPC started in; its answer is cached
	// only if no invalidation happened meanwhile.
	epoch   uint64
	waiters int // guarded by cache.mu; read by tests
	val     proto.Message
	err     error
}

// cache is a bounded TTL map with a reverse index from refs to entries.
// Invalidations are rare (credential rotations) and reads are the hot path,
// so reads take a shared lock and never reorder anything: eviction is in
// insertion order, which with one TTL is also expiry order.
type cache struct {
	mu       sync.RWMutex
	max      int
	entries  map[key]*entry
	order    *list.List // of *entry, oldest first
	byRef    map[ref]map[*entry]struct{}
	inflight map[key]*call
	// epoch counts invalidations. One counter for all keys keeps an RPC
	// that raced with any invalidation from caching a stale answer; the
	// cost, an occasional uncached answer, is paid only when credentials
	// change.
	epoch uint64
}

func newCache(max int) *cache {
	return &cache{
		max:      max,
		entries:  map[key]*entry{},
		order:    list.New(),
		byRef:    map[ref]map[*entry]struct{}{},
		inflight: map[key]*call{},
	}
}

func (c *cache) get(k key, now time.Time) (proto.Message, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	e, ok := c.entries[k]
	if !ok || !now.Before(e.expires) {
		return nil, false
	}
	return e.val, true
}

// begin returns the cached answer for k, or the call to wait on; leader is
// true when the caller has to start that call's RPC.
func (c *cache) begin(k key, now time.Time) (val proto.Message, cl *call, leader bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.entries[k]; ok && now.Before(e.expires) {
		return e.val, nil, false
	}
	// A call that started before an invalidation may return what was just
	// revoked: callers arriving after it start their own.
	if cl, ok := c.inflight[k]; ok && cl.epoch == c.epoch {
		cl.waiters++
		return nil, cl, false
	}
	cl = &call{done: make(chan struct{}), epoch: c.epoch, waiters: 1}
	c.inflight[k] = cl
	return nil, cl, true
}

// finish records cl's outcome and wakes its waiters. A successful answer is
// cached until expires when ttl allows and nothing was invalidated since the
// call began.
func (c *cache) finish(k key, cl *call, refs []ref, expires time.Time, store bool) {
	c.mu.Lock()
	if c.inflight[k] == cl {
		delete(c.inflight, k)
	}
	if store && cl.err == nil && cl.epoch == c.epoch && c.max > 0 {
		c.put(k, cl.val, refs, expires)
	}
	c.mu.Unlock()
	close(cl.done)
}

// put must be called with mu held.
func (c *cache) put(k key, val proto.Message, refs []ref, expires time.Time) {
	if old, ok := c.entries[k]; ok {
		c.remove(old)
	}
	for len(c.entries) >= c.max {
		c.remove(c.order.Front().Value.(*entry))
	}
	e := &entry{key: k, val: val, expires: expires, refs: refs}
	e.elem = c.order.PushBack(e)
	c.entries[k] = e
	for _, r := range refs {
		set := c.byRef[r]
		if set == nil {
			set = map[*entry]struct{}{}
			c.byRef[r] = set
		}
		set[e] = struct{}{}
	}
}

// remove must be called with mu held.
func (c *cache) remove(e *entry) {
	delete(c.entries, e.key)
	c.order.Remove(e.elem)
	for _, r := range e.refs {
		set := c.byRef[r]
		delete(set, e)
		if len(set) == 0 {
			delete(c.byRef, r)
		}
	}
}

// invalidate drops every entry built from any of refs and returns how many
// it dropped.
func (c *cache) invalidate(refs ...ref) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.epoch++
	n := 0
	for _, r := range refs {
		for e := range c.byRef[r] {
			c.remove(e)
			n++
		}
	}
	return n
}

// reset drops every entry and returns how many it dropped.
func (c *cache) reset() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.epoch++
	n := len(c.entries)
	clear(c.entries)
	clear(c.byRef)
	c.order.Init()
	return n
}

func (c *cache) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.entries)
}
