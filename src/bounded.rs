//! A map bounded in the bytes its values hold, oldest entry out first: the
//! in-memory caches of computed representations (movie layouts, stored
//! derivatives) keep what was used lately without growing past a budget.

use std::collections::{HashMap, VecDeque};

/// Values by key, each with its cost in bytes, their sum at most `limit`.
pub(crate) struct BoundedMap<V> {
    entries: HashMap<String, (V, u64)>,
    /// Keys, oldest first (an entry replaced goes to the back).
    order: VecDeque<String>,
    bytes: u64,
    limit: u64,
}

impl<V> BoundedMap<V> {
    pub(crate) fn new(limit: u64) -> Self {
        BoundedMap {
            entries: HashMap::new(),
            order: VecDeque::new(),
            bytes: 0,
            limit,
        }
    }

    pub(crate) fn get(&self, key: &str) -> Option<&V> {
        self.entries.get(key).map(|(value, _)| value)
    }

    /// Keeps `value` under `key`, dropping the oldest entries to make room;
    /// a value costing more than the whole budget is not kept.
    pub(crate) fn insert(&mut self, key: &str, value: V, cost: u64) {
        if cost > self.limit {
            return;
        }
        self.remove(key);
        while self.bytes + cost > self.limit {
            let Some(oldest) = self.order.pop_front() else {
                break;
            };
            if let Some((_, old)) = self.entries.remove(&oldest) {
                self.bytes -= old;
            }
        }
        self.bytes += cost;
        self.order.push_back(key.to_owned());
        self.entries.insert(key.to_owned(), (value, cost));
    }

    pub(crate) fn remove(&mut self, key: &str) {
        if let Some((_, old)) = self.entries.remove(key) {
            self.bytes -= old;
            self.order.retain(|k| k != key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_within_its_budget_oldest_out_first() {
        let mut map = BoundedMap::new(10);
        map.insert("a", 'a', 4);
        map.insert("b", 'b', 4);
        map.insert("c", 'c', 4);
        assert_eq!(
            (map.get("a"), map.get("b"), map.get("c")),
            (None, Some(&'b'), Some(&'c'))
        );
        // Replacing an entry moves it to the back.
        map.insert("b", 'B', 4);
        map.insert("d", 'd', 2);
        assert_eq!(map.get("c"), Some(&'c'));
        map.insert("e", 'e', 4);
        assert_eq!(
            (map.get("c"), map.get("b"), map.get("e")),
            (None, Some(&'B'), Some(&'e'))
        );
        map.insert("huge", 'h', 11);
        assert_eq!(map.get("huge"), None);
        map.remove("b");
        assert_eq!(map.get("b"), None);
        map.insert("f", 'f', 8);
        assert_eq!(
            (map.get("d"), map.get("e"), map.get("f")),
            (None, None, Some(&'f'))
        );
    }
}
