//! Signed links: a request path with an expiry time and an HMAC-SHA256 over
//! both, checked in constant time.
//!
//! A signed link is `PATH?expires=UNIX_SECONDS&kid=KEY_ID&sig=SIGNATURE`, where
//! `SIGNATURE` is the unpadded URL-safe base64 of
//! `HMAC-SHA256(secret, "media-streamer-v1\n" + PATH + "\n" + expires)` and
//! `PATH` is the decoded path (`/` followed by the object key or directory
//! prefix). Other query parameters are ignored: they never change what is
//! served, and they are not signed.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use percent_encoding::percent_decode_str;
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The path a link signs: `/`, the object key (or directory prefix) with
/// every `%` written `%25` and every `?` written `%3F`, then, for a
/// derivative, `?` and its canonical parameters. The escapes make it
/// one-to-one: the object `cat.jpg?w=640` signs `/cat.jpg%3Fw=640`, the
/// derivative `w=640` of `cat.jpg` signs `/cat.jpg?w=640`, so a link for
/// one never opens the other. A key without `%` or `?` signs as it did.
pub fn signed_path(key: &str, canonical: Option<&str>) -> String {
    let mut path = String::with_capacity(key.len() + 1);
    path.push('/');
    for c in key.chars() {
        match c {
            '%' => path.push_str("%25"),
            '?' => path.push_str("%3F"),
            c => path.push(c),
        }
    }
    if let Some(canonical) = canonical.filter(|c| !c.is_empty()) {
        path.push('?');
        path.push_str(canonical);
    }
    path
}

/// What every signed message starts with; a new format would change it.
const DOMAIN: &str = "media-streamer-v1";

/// The secrets that sign and verify links, each with an id. The first signs
/// new links; all verify, so a key can be rotated out while links made with it
/// are still in use.
#[derive(Clone)]
pub struct SigningKeys {
    keys: Vec<(String, Vec<u8>)>,
    /// How far past its expiry a link is still accepted, for clocks that
    /// disagree.
    pub skew_secs: u64,
}

impl std::fmt::Debug for SigningKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ids: Vec<&str> = self.keys.iter().map(|(id, _)| id.as_str()).collect();
        f.debug_struct("SigningKeys")
            .field("ids", &ids)
            .field("skew_secs", &self.skew_secs)
            .finish_non_exhaustive()
    }
}

/// Why a key setting cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("a signing secret must be at least 32 bytes")]
    TooShort,
    #[error(
        "signing keys are ID:SECRET pairs separated by commas, ids of letters, digits, '-' and '_'"
    )]
    Malformed,
    #[error("the signing key id {0:?} is given twice")]
    DuplicateId(String),
}

/// Why a request's signature is refused (all 403).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("this link needs a signature")]
    Missing,
    #[error("the link's signature parameters are malformed")]
    Malformed,
    #[error("the link was signed with an unknown key")]
    UnknownKey,
    #[error("the link has expired")]
    Expired,
    #[error("the link's signature is not valid")]
    Invalid,
}

const MIN_SECRET_BYTES: usize = 32;

impl SigningKeys {
    /// One secret, with the id `default`.
    pub fn single(secret: &str, skew_secs: u64) -> Result<Self, KeyError> {
        Self::from_pairs(
            vec![("default".to_owned(), secret.as_bytes().to_vec())],
            skew_secs,
        )
    }

    /// `ID:SECRET,ID:SECRET,...`; the first signs.
    pub fn list(text: &str, skew_secs: u64) -> Result<Self, KeyError> {
        let mut pairs = Vec::new();
        for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (id, secret) = item.split_once(':').ok_or(KeyError::Malformed)?;
            pairs.push((id.to_owned(), secret.as_bytes().to_vec()));
        }
        Self::from_pairs(pairs, skew_secs)
    }

    fn from_pairs(keys: Vec<(String, Vec<u8>)>, skew_secs: u64) -> Result<Self, KeyError> {
        if keys.is_empty() {
            return Err(KeyError::Malformed);
        }
        for (i, (id, secret)) in keys.iter().enumerate() {
            let id_ok = !id.is_empty()
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if !id_ok {
                return Err(KeyError::Malformed);
            }
            if secret.len() < MIN_SECRET_BYTES {
                return Err(KeyError::TooShort);
            }
            if keys[..i].iter().any(|(other, _)| other == id) {
                return Err(KeyError::DuplicateId(id.clone()));
            }
        }
        Ok(SigningKeys { keys, skew_secs })
    }

    fn mac(secret: &[u8], path: &str, expires: i64) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes any key length");
        mac.update(format!("{DOMAIN}\n{path}\n{expires}").as_bytes());
        mac
    }

    /// The query string that signs `path` (decoded, starting with `/`) until
    /// `expires` (Unix seconds), with the first key.
    pub fn sign(&self, path: &str, expires: i64) -> String {
        let (id, secret) = &self.keys[0];
        let sig = URL_SAFE_NO_PAD.encode(Self::mac(secret, path, expires).finalize().into_bytes());
        format!("expires={expires}&kid={id}&sig={sig}")
    }

    /// Checks the signature in `query` for `path` at time `now` (Unix
    /// seconds). The signature is compared in constant time.
    pub fn verify(&self, path: &str, query: Option<&str>, now: i64) -> Result<(), SignatureError> {
        let (mut expires, mut kid, mut sig) = (None, None, None);
        for pair in query.unwrap_or("").split('&') {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let slot = match name {
                "expires" => &mut expires,
                "kid" => &mut kid,
                "sig" => &mut sig,
                _ => continue,
            };
            if slot.replace(value).is_some() {
                return Err(SignatureError::Malformed); // a parameter twice
            }
        }
        let (Some(expires), Some(sig)) = (expires, sig) else {
            return Err(SignatureError::Missing);
        };
        let expires: i64 = percent_decode_str(expires)
            .decode_utf8()
            .ok()
            .and_then(|e| e.parse().ok())
            .ok_or(SignatureError::Malformed)?;
        let sig = URL_SAFE_NO_PAD
            .decode(sig)
            .map_err(|_| SignatureError::Malformed)?;
        let secret = match kid {
            Some(kid) => {
                &self
                    .keys
                    .iter()
                    .find(|(id, _)| id == kid)
                    .ok_or(SignatureError::UnknownKey)?
                    .1
            }
            None if self.keys.len() == 1 => &self.keys[0].1,
            None => return Err(SignatureError::UnknownKey),
        };
        Self::mac(secret, path, expires)
            .verify_slice(&sig)
            .map_err(|_| SignatureError::Invalid)?;
        let skew = i64::try_from(self.skew_secs).unwrap_or(i64::MAX);
        if now > expires.saturating_add(skew) {
            return Err(SignatureError::Expired);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "a-secret-of-at-least-thirty-two-bytes!!";
    const B: &str = "another-secret-thirty-two-bytes-or-more";

    #[test]
    fn signed_paths_are_one_to_one() {
        let cases = [
            ("cat.jpg", None, "/cat.jpg"),
            ("cat.jpg", Some("w=640"), "/cat.jpg?w=640"),
            ("cat.jpg?w=640", None, "/cat.jpg%3Fw=640"),
            ("cat.jpg%3Fw=640", None, "/cat.jpg%253Fw=640"),
            ("100%.jpeg", Some("w=16"), "/100%25.jpeg?w=16"),
            ("a b/é.mp4", Some(""), "/a b/é.mp4"),
            ("photos/", None, "/photos/"),
        ];
        for (key, canonical, path) in cases {
            assert_eq!(signed_path(key, canonical), path, "{key} {canonical:?}");
        }
    }

    #[test]
    fn keys_parse_and_refuse() {
        assert!(SigningKeys::single(A, 0).is_ok());
        assert_eq!(
            SigningKeys::single("short", 0).err(),
            Some(KeyError::TooShort)
        );
        assert!(SigningKeys::list(&format!("new:{B}, old:{A}"), 0).is_ok());
        for bad in ["", "nocolon", &format!("bad id:{A}"), &format!(":{A}")] {
            assert_eq!(
                SigningKeys::list(bad, 0).err(),
                Some(KeyError::Malformed),
                "{bad}"
            );
        }
        assert_eq!(
            SigningKeys::list(&format!("x:{A},x:{B}"), 0).err(),
            Some(KeyError::DuplicateId("x".into()))
        );
        let debug = format!("{:?}", SigningKeys::single(A, 5).unwrap());
        assert!(!debug.contains(A), "{debug}");
    }

    #[test]
    fn signatures_verify_only_for_their_path_key_and_time() {
        let keys = SigningKeys::list(&format!("new:{B},old:{A}"), 30).unwrap();
        let old = SigningKeys::list(&format!("old:{A}"), 30).unwrap();
        let single = SigningKeys::single(A, 30).unwrap();
        let now = 1_700_000_000;
        let good = keys.sign("/videos/a.mp4", now + 60);
        assert!(good.starts_with(&format!("expires={}&kid=new&sig=", now + 60)));
        let sig = good.rsplit_once("sig=").unwrap().1.to_owned();
        let by_old = old.sign("/videos/a.mp4", now + 60);
        let by_single = single.sign("/videos/a.mp4", now + 60);
        let nokid = format!(
            "expires={}&sig={}",
            now + 60,
            by_single.rsplit_once("sig=").unwrap().1
        );
        type Case<'a> = (
            &'a str,
            &'a SigningKeys,
            &'a str,
            Option<String>,
            i64,
            Result<(), SignatureError>,
        );
        let cases: Vec<Case> = vec![
            (
                "valid",
                &keys,
                "/videos/a.mp4",
                Some(good.clone()),
                now,
                Ok(()),
            ),
            (
                "other parameters ignored",
                &keys,
                "/videos/a.mp4",
                Some(format!("t=5&{good}&x")),
                now,
                Ok(()),
            ),
            (
                "rotated-out key still verifies",
                &keys,
                "/videos/a.mp4",
                Some(by_old.clone()),
                now,
                Ok(()),
            ),
            (
                "single key without kid",
                &single,
                "/videos/a.mp4",
                Some(nokid.clone()),
                now,
                Ok(()),
            ),
            (
                "no kid with several keys",
                &keys,
                "/videos/a.mp4",
                Some(nokid),
                now,
                Err(SignatureError::UnknownKey),
            ),
            (
                "within the skew",
                &keys,
                "/videos/a.mp4",
                Some(good.clone()),
                now + 90,
                Ok(()),
            ),
            (
                "past the skew",
                &keys,
                "/videos/a.mp4",
                Some(good.clone()),
                now + 91,
                Err(SignatureError::Expired),
            ),
            (
                "another path",
                &keys,
                "/videos/b.mp4",
                Some(good.clone()),
                now,
                Err(SignatureError::Invalid),
            ),
            (
                "the same path with a slash more",
                &keys,
                "/videos/a.mp4/",
                Some(good.clone()),
                now,
                Err(SignatureError::Invalid),
            ),
            (
                "a later expiry",
                &keys,
                "/videos/a.mp4",
                Some(good.replace(&(now + 60).to_string(), &(now + 6000).to_string())),
                now,
                Err(SignatureError::Invalid),
            ),
            (
                "unknown key id",
                &keys,
                "/videos/a.mp4",
                Some(good.replace("kid=new", "kid=gone")),
                now,
                Err(SignatureError::UnknownKey),
            ),
            (
                "key id swapped",
                &keys,
                "/videos/a.mp4",
                Some(good.replace("kid=new", "kid=old")),
                now,
                Err(SignatureError::Invalid),
            ),
            (
                "no query",
                &keys,
                "/videos/a.mp4",
                None,
                now,
                Err(SignatureError::Missing),
            ),
            (
                "no sig",
                &keys,
                "/videos/a.mp4",
                Some(format!("expires={}", now + 60)),
                now,
                Err(SignatureError::Missing),
            ),
            (
                "no expiry",
                &keys,
                "/videos/a.mp4",
                Some(format!("sig={sig}")),
                now,
                Err(SignatureError::Missing),
            ),
            (
                "sig twice",
                &keys,
                "/videos/a.mp4",
                Some(format!("{good}&sig={sig}")),
                now,
                Err(SignatureError::Malformed),
            ),
            (
                "expiry not a number",
                &keys,
                "/videos/a.mp4",
                Some(good.replace(&format!("expires={}", now + 60), "expires=soon")),
                now,
                Err(SignatureError::Malformed),
            ),
            (
                "sig not base64",
                &keys,
                "/videos/a.mp4",
                Some(format!("expires={}&kid=new&sig=%%%", now + 60)),
                now,
                Err(SignatureError::Malformed),
            ),
            (
                "truncated sig",
                &keys,
                "/videos/a.mp4",
                Some(good[..good.len() - 4].to_owned()),
                now,
                Err(SignatureError::Invalid),
            ),
        ];
        for (name, keys, path, query, at, want) in cases {
            assert_eq!(keys.verify(path, query.as_deref(), at), want, "{name}");
        }
    }
}
