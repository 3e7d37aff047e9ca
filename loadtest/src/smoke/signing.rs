//! Signed links as the server checks them (its `signing.rs`): the link is
//! `PATH?expires=UNIX_SECONDS&kid=KEY_ID&sig=SIGNATURE`, the signature the
//! unpadded URL-safe base64 of HMAC-SHA256(secret, "media-streamer-v1\n" +
//! PATH + "\n" + expires), PATH the decoded path (with an image's canonical
//! parameters after a `?`). Written again here: the smoke test checks the
//! server, so it shares none of its code.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use http::StatusCode;
use percent_encoding::percent_decode_str;
use sha2::Sha256;

use super::exchange::Exchange;

/// What every signed message starts with (the server's `DOMAIN`).
const DOMAIN: &str = "media-streamer-v1";
/// The key id of a single `--signing-secret` (the server's `SigningKeys::single`).
const SINGLE_KEY_ID: &str = "default";

/// One key that signs links.
#[derive(Clone)]
pub struct LinkSigner {
    kid: String,
    secret: Vec<u8>,
}

impl std::fmt::Debug for LinkSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinkSigner")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl LinkSigner {
    /// The server's MEDIA_SIGNING_SECRET.
    pub fn secret(secret: &str) -> Result<Self, String> {
        if secret.is_empty() {
            return Err("--signing-secret is empty".into());
        }
        Ok(LinkSigner {
            kid: SINGLE_KEY_ID.to_owned(),
            secret: secret.as_bytes().to_vec(),
        })
    }

    /// The server's MEDIA_SIGNING_KEYS, `ID:SECRET,...`: the first signs.
    pub fn keys(list: &str) -> Result<Self, String> {
        let first = list.split(',').map(str::trim).find(|s| !s.is_empty());
        match first.and_then(|pair| pair.split_once(':')) {
            Some((kid, secret)) if !kid.is_empty() && !secret.is_empty() => Ok(LinkSigner {
                kid: kid.to_owned(),
                secret: secret.as_bytes().to_vec(),
            }),
            _ => Err("--signing-keys takes ID:SECRET pairs separated by commas".into()),
        }
    }

    /// The signature query for `path` (decoded, with canonical parameters
    /// if any) until `expires` (Unix seconds).
    pub fn query(&self, path: &str, expires: i64) -> String {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.secret).expect("HMAC takes any key length");
        mac.update(format!("{DOMAIN}\n{path}\n{expires}").as_bytes());
        let sig = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        format!("expires={expires}&kid={}&sig={sig}", self.kid)
    }
}

/// The decoded form of a URL's path, as the server signs it.
pub fn decoded_path(path: &str) -> Result<String, String> {
    percent_decode_str(path)
        .decode_utf8()
        .map(|p| p.into_owned())
        .map_err(|_| format!("{path}: the decoded path is not UTF-8"))
}

/// `query` with one character of its signature changed (the first, so the
/// base64 stays canonical): well-formed, no longer valid.
pub fn tampered(query: &str) -> Option<String> {
    let at = query.find("sig=")? + 4;
    let first = query[at..].chars().next()?;
    let flipped = if first == 'A' { 'B' } else { 'A' };
    Some(format!(
        "{}{flipped}{}",
        &query[..at],
        &query[at + first.len_utf8()..]
    ))
}

/// A signed link's answer to a range: 206.
pub fn signed_served(answer: &Exchange) -> Result<String, String> {
    if answer.status == StatusCode::PARTIAL_CONTENT {
        Ok(format!(
            "206 {}",
            answer
                .header(http::header::CONTENT_RANGE)
                .unwrap_or_default()
        ))
    } else {
        Err(format!(
            "expected 206 for a signed link, got {}",
            answer.said()
        ))
    }
}

/// An unsigned or tampered link's answer: 403, with none of the object's bytes.
pub fn refused(answer: &Exchange, what: &str) -> Result<String, String> {
    if answer.status == StatusCode::FORBIDDEN {
        Ok(format!("{} for {what}", answer.said()))
    } else {
        Err(format!("expected 403 for {what}, got {}", answer.said()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::smoke::exchange::fixtures::answer;

    #[test]
    fn signs_as_the_server_does() {
        // Computed with Python: base64.urlsafe_b64encode(hmac.new(secret,
        // b"media-streamer-v1\n/a b.mp4\n1700000000", sha256).digest()).rstrip(b"=")
        let signer = LinkSigner::secret("a-secret-of-at-least-thirty-two-bytes!!").unwrap();
        assert_eq!(
            signer.query("/a b.mp4", 1_700_000_000),
            "expires=1700000000&kid=default&sig=h2ggmgd1lFZenMx4eh3LEh7axwA3LEukxJffQJA7qUg"
        );
        let keys = LinkSigner::keys("new:a-secret-of-at-least-thirty-two-bytes!!, old:x").unwrap();
        assert!(keys
            .query("/a b.mp4", 1_700_000_000)
            .starts_with("expires=1700000000&kid=new&sig="));
        for bad in ["", "nocolon", ":secret", "id:"] {
            assert!(LinkSigner::keys(bad).is_err(), "{bad}");
        }
        assert!(LinkSigner::secret("").is_err());
    }

    #[test]
    fn paths_are_signed_decoded_and_signatures_tampered_in_place() {
        assert_eq!(decoded_path("/a%20b/%C3%A9.mp4").unwrap(), "/a b/é.mp4");
        assert!(decoded_path("/%ff.mp4").is_err());
        assert_eq!(
            tampered("expires=1&kid=k&sig=Qxyz").unwrap(),
            "expires=1&kid=k&sig=Axyz"
        );
        assert_eq!(
            tampered("expires=1&kid=k&sig=Axyz").unwrap(),
            "expires=1&kid=k&sig=Bxyz"
        );
        assert_eq!(tampered("expires=1"), None);
    }

    #[test]
    fn answers_are_judged() {
        let partial = answer(206, &[("content-range", "bytes 0-1/10")], b"ab");
        let forbidden = answer(
            403,
            &[],
            b"403 Forbidden: the link's signature is not valid",
        );
        assert!(signed_served(&partial).is_ok());
        assert_eq!(
            signed_served(&forbidden).unwrap_err(),
            "expected 206 for a signed link, got 403 \"403 Forbidden: the link's signature is not valid\""
        );
        assert!(refused(&forbidden, "an unsigned link").is_ok());
        assert_eq!(
            refused(&partial, "an unsigned link").unwrap_err(),
            "expected 403 for an unsigned link, got 206"
        );
    }
}
