//! A map bounded in the bytes its entries hold, oldest entry out first: the
//! in-memory caches of computed representations (movie layouts, stored
//! derivatives) keep what was used lately without growing past a budget.
//!
//! An entry costs its value's bytes and its key's, held twice (in the map
//! and in the order), so a flood of distinct names with small values is
//! bounded too. The order is a `BTreeMap` from an insertion number to the
//! key: inserting, removing and evicting are O(log n), where a `VecDeque`
//! of keys had to be searched (O(n)) to remove one, under the caller's lock.
//! (A linked hash map crate would give O(1); it is one dependency more for a
//! map of at most a few thousand entries, where O(log n) is a few compares.)

use std::collections::{BTreeMap, HashMap};

/// Values by key, each with its cost in bytes, their sum at most `limit`.
pub(crate) struct BoundedMap<V> {
    /// Value, cost (the value's bytes and the key's, twice), insertion number.
    entries: HashMap<String, (V, u64, u64)>,
    /// Keys by insertion number, oldest first (a replaced entry gets a new
    /// number, so it goes to the back).
    order: BTreeMap<u64, String>,
    next: u64,
    bytes: u64,
    limit: u64,
}

impl<V> BoundedMap<V> {
    pub(crate) fn new(limit: u64) -> Self {
        BoundedMap {
            entries: HashMap::new(),
            order: BTreeMap::new(),
            next: 0,
            bytes: 0,
            limit,
        }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(crate) fn get(&self, key: &str) -> Option<&V> {
        self.entries.get(key).map(|(value, _, _)| value)
    }

    /// Keeps `value` under `key`, dropping the oldest entries to make room;
    /// an entry costing more than the whole budget is not kept.
    pub(crate) fn insert(&mut self, key: &str, value: V, cost: u64) {
        self.remove(key);
        let cost = cost.saturating_add(2 * key.len() as u64);
        if cost > self.limit {
            return;
        }
        while self.bytes + cost > self.limit {
            let Some((_, oldest)) = self.order.pop_first() else {
                break;
            };
            if let Some((_, old, _)) = self.entries.remove(&oldest) {
                self.bytes -= old;
            }
        }
        let number = self.next;
        self.next += 1;
        self.bytes += cost;
        self.order.insert(number, key.to_owned());
        self.entries.insert(key.to_owned(), (value, cost, number));
    }

    pub(crate) fn remove(&mut self, key: &str) {
        if let Some((_, old, number)) = self.entries.remove(key) {
            self.bytes -= old;
            self.order.remove(&number);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_within_its_budget_oldest_out_first() {
        // Each entry costs 2 more: its one-byte key, twice.
        let mut map = BoundedMap::new(10);
        map.insert("a", 'a', 2);
        map.insert("b", 'b', 2);
        map.insert("c", 'c', 2);
        assert_eq!(
            (map.get("a"), map.get("b"), map.get("c")),
            (None, Some(&'b'), Some(&'c'))
        );
        // Replacing an entry moves it to the back.
        map.insert("b", 'B', 2);
        map.insert("d", 'd', 0);
        assert_eq!(map.get("c"), Some(&'c'));
        map.insert("e", 'e', 2);
        assert_eq!(
            (map.get("c"), map.get("b"), map.get("e")),
            (None, Some(&'B'), Some(&'e'))
        );
        map.insert("huge", 'h', 11);
        assert_eq!(map.get("huge"), None);
        map.remove("b");
        assert_eq!(map.get("b"), None);
        map.insert("f", 'f', 6);
        assert_eq!(
            (map.get("d"), map.get("e"), map.get("f")),
            (None, None, Some(&'f'))
        );
    }

    #[test]
    fn counts_the_bytes_of_its_keys() {
        // Values that cost nothing still hold their names: a budget of 100
        // bytes keeps one entry under a 40-byte key (held twice: in the map
        // and in the recency order), not every one.
        let mut map = BoundedMap::new(100);
        for i in 0..1000 {
            map.insert(&format!("{i:040}"), (), 0);
        }
        assert_eq!(map.len(), 1);
        assert!(map.get(&format!("{:040}", 999)).is_some());
    }

    #[test]
    fn removing_and_replacing_keep_the_order_of_the_rest() {
        let mut map = BoundedMap::new(4 * (2 + 2));
        for key in ["a", "b", "c", "d"] {
            map.insert(key, (), 2);
        }
        map.remove("b");
        map.insert("a", (), 2); // to the back: c, d, a
        map.insert("e", (), 2);
        map.insert("f", (), 2); // c goes
        assert_eq!(
            ["a", "b", "c", "d", "e", "f"].map(|k| map.get(k).is_some()),
            [true, false, false, true, true, true]
        );
    }
}
