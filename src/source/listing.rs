//! What a source lists under a key prefix, one page at a time.

/// One entry of a listing: a sub-directory (its name ends with `/`) or an
/// object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListEntry {
    /// The name below the listed prefix; a directory's ends with `/`.
    pub name: String,
    /// The object's size; `None` for a directory.
    pub size: Option<u64>,
}

impl ListEntry {
    pub fn directory(name: &str) -> Self {
        ListEntry {
            name: format!("{}/", name.trim_end_matches('/')),
            size: None,
        }
    }

    pub fn object(name: &str, size: u64) -> Self {
        ListEntry {
            name: name.to_owned(),
            size: Some(size),
        }
    }

    pub(crate) fn is_directory(&self) -> bool {
        self.size.is_none()
    }
}

/// One page of a listing, in UTF-8 byte order of the names (S3's order), with
/// a directory's name compared with its trailing `/`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Listing {
    pub entries: Vec<ListEntry>,
    /// The name to list after for the next page, when there is one.
    pub next_after: Option<String>,
}

impl Listing {
    /// One page of a whole listing: sorted, the names after `after`, at most
    /// `limit` (at least one) of them.
    pub fn page(mut entries: Vec<ListEntry>, after: Option<&str>, limit: usize) -> Self {
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        if let Some(after) = after {
            entries.retain(|e| e.name.as_str() > after);
        }
        let limit = limit.max(1);
        let next_after = (entries.len() > limit).then(|| entries[limit - 1].name.clone());
        entries.truncate(limit);
        Listing {
            entries,
            next_after,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_follow_byte_order_with_directories_slashed() {
        let all = || {
            vec![
                ListEntry::object("b.mp4", 1),
                ListEntry::directory("a"),
                ListEntry::object("a.txt", 1),
                ListEntry::object("a0", 1),
                ListEntry::object("Z.mp3", 1),
            ]
        };
        let names = |l: &Listing| l.entries.iter().map(|e| e.name.clone()).collect::<Vec<_>>();
        let first = Listing::page(all(), None, 2);
        assert_eq!(names(&first), ["Z.mp3", "a.txt"]);
        assert_eq!(first.next_after.as_deref(), Some("a.txt"));
        let second = Listing::page(all(), first.next_after.as_deref(), 2);
        assert_eq!(names(&second), ["a/", "a0"]);
        let third = Listing::page(all(), second.next_after.as_deref(), 2);
        assert_eq!(names(&third), ["b.mp4"]);
        assert_eq!(third.next_after, None);
        let whole = Listing::page(all(), None, 5);
        assert_eq!(whole.entries.len(), 5);
        assert_eq!(whole.next_after, None);
    }
}
