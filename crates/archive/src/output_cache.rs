//! A bounded in-memory cache of what the archive computes from stored
//! objects on the way out (rendered images, transcoded frames): least
//! recently used entries leave first once the total size passes the bound.
//! Keys name the object's content (its SHA-256), so a new version of an
//! instance never meets an old entry.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use bytes::Bytes;

/// The cache. A bound of 0 disables it.
pub struct OutputCache {
    max_bytes: usize,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    entries: HashMap<String, (Bytes, u64)>,
    by_use: BTreeMap<u64, String>,
    clock: u64,
    bytes: usize,
    hits: u64,
    misses: u64,
}

/// Counters, for operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct CacheStats {
    pub entries: usize,
    pub bytes: usize,
    pub max_bytes: usize,
    pub hits: u64,
    pub misses: u64,
}

impl OutputCache {
    pub fn new(max_bytes: usize) -> OutputCache {
        OutputCache { max_bytes, inner: Mutex::new(Inner::default()) }
    }

    pub fn get(&self, key: &str) -> Option<Bytes> {
        if self.max_bytes == 0 {
            return None;
        }
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        g.clock += 1;
        let now = g.clock;
        let found = g.entries.get_mut(key).map(|(b, used)| (b.clone(), std::mem::replace(used, now)));
        match found {
            Some((bytes, before)) => {
                g.by_use.remove(&before);
                g.by_use.insert(now, key.to_string());
                g.hits += 1;
                Some(bytes)
            }
            None => {
                g.misses += 1;
                None
            }
        }
    }

    pub fn put(&self, key: &str, value: Bytes) {
        // An entry larger than an eighth of the cache would push out too much.
        if self.max_bytes == 0 || value.len() > self.max_bytes / 8 {
            return;
        }
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        g.clock += 1;
        let now = g.clock;
        let len = value.len();
        if let Some((old, used)) = g.entries.insert(key.to_string(), (value, now)) {
            g.bytes -= old.len();
            g.by_use.remove(&used);
        }
        g.by_use.insert(now, key.to_string());
        g.bytes += len;
        while g.bytes > self.max_bytes {
            let Some((_, oldest)) = g.by_use.pop_first() else { break };
            if let Some((b, _)) = g.entries.remove(&oldest) {
                g.bytes -= b.len();
            }
        }
    }

    pub fn stats(&self) -> CacheStats {
        let g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        CacheStats { entries: g.entries.len(), bytes: g.bytes, max_bytes: self.max_bytes, hits: g.hits, misses: g.misses }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn least_recently_used_leave_first() {
        let c = OutputCache::new(800);
        for k in ["a", "b", "c", "d"] {
            c.put(k, Bytes::from(vec![0u8; 100]));
        }
        assert!(c.get("a").is_some()); // a is now the most recent
        for k in ["e", "f", "g", "h", "i"] {
            c.put(k, Bytes::from(vec![0u8; 100]));
        }
        let s = c.stats();
        assert!(s.bytes <= 800, "{s:?}");
        assert!(c.get("a").is_some(), "recently used stays");
        assert!(c.get("b").is_none(), "oldest left");
        assert!(c.get("i").is_some());
        c.put("huge", Bytes::from(vec![0u8; 200]));
        assert!(c.get("huge").is_none(), "too big to keep");
        c.put("i", Bytes::from(vec![1u8; 50]));
        assert_eq!(c.get("i").unwrap()[0], 1);
        assert!(c.stats().bytes <= 800);
    }

    #[test]
    fn zero_disables() {
        let c = OutputCache::new(0);
        c.put("a", Bytes::from_static(b"x"));
        assert!(c.get("a").is_none());
    }
}
