package cache

// Key exposes the key of linkID.
func (c *Cache) Key(linkID string) string { return c.key(linkID) }

// CleanUp runs otter's pending maintenance (evictions) now.
func (c *Cache) CleanUp() { c.store.CleanUp() }

// ShareStore makes dst keep its entries in src's store, as caches of
// several namespaces sharing one store (Redis) would.
func ShareStore(dst, src *Cache) {
	dst.store.StopAllGoroutines()
	dst.store = src.store
}
