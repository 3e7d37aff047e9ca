//! A raw HTTP/1.1 client: sends exactly the bytes a test writes (no path
//! normalisation, no header rewriting) and reports exactly what came back,
//! including whether the message was complete.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Longest a test waits for a whole response.
pub const RESPONSE_TIMEOUT: Duration = Duration::from_secs(30);

/// Asks for bytes `0..length` of `path`, reads at least `read` bytes of the
/// answer, then goes away mid-body; returns how many bytes it read.
pub async fn leave_mid_body(addr: SocketAddr, path: &str, length: u64, read: u64) -> u64 {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: x\r\nRange: bytes=0-{}\r\n\r\n",
        length - 1
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut received = 0u64;
    let mut buf = vec![0u8; 64 * 1024];
    while received < read {
        received += stream.read(&mut buf).await.unwrap() as u64;
    }
    received
}

#[derive(Debug, Clone)]
pub struct RawResponse {
    pub status: u16,
    /// Header fields in order, names lowercased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The body ended where its framing says it should (Content-Length reached
    /// or the last chunk seen).
    pub complete: bool,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        let mut values = self.headers.iter().filter(|(n, _)| n == name);
        let first = values.next().map(|(_, v)| v.as_str());
        assert!(values.next().is_none(), "{name} sent more than once");
        first
    }
}

/// Sends a request head with `Connection: close` and reads the whole answer
/// (a HEAD's answer has no body whatever its headers say).
pub async fn send(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
) -> RawResponse {
    let mut request =
        format!("{method} {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    let raw = exchange(addr, request.as_bytes()).await;
    parse_response(&raw, method == "HEAD").unwrap_or_else(|| {
        panic!(
            "unparsable response to {target}: {:?}",
            String::from_utf8_lossy(&raw)
        )
    })
}

/// Sends `request` (which must ask to close the connection), reads the first
/// 64 KiB of the answer, runs `interrupt` (something that breaks the source),
/// then reads whatever else comes until the server closes.
pub async fn read_across(
    addr: SocketAddr,
    request: &str,
    interrupt: impl std::future::Future<Output = ()>,
) -> RawResponse {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream
        .write_all(request.as_bytes())
        .await
        .expect("write request");
    let mut raw = vec![0u8; 64 * 1024];
    stream.read_exact(&mut raw).await.expect("the first 64 KiB");
    interrupt.await;
    tokio::time::timeout(RESPONSE_TIMEOUT, stream.read_to_end(&mut raw))
        .await
        .expect("the response ended")
        .ok();
    parse_response(&raw, false).expect("an HTTP response")
}

/// Writes `request` and reads until the server closes the connection.
pub async fn exchange(addr: SocketAddr, request: &[u8]) -> Vec<u8> {
    tokio::time::timeout(RESPONSE_TIMEOUT, async {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        stream.write_all(request).await.expect("write request");
        let mut raw = Vec::new();
        // A reset after a complete answer is fine; the parse decides.
        let _ = stream.read_to_end(&mut raw).await;
        raw
    })
    .await
    .expect("the server answered in time")
}

/// Parses one response from `raw`; `None` if its head is incomplete.
/// Parses one response from `raw`; `None` if its head is incomplete.
pub fn parse_response(raw: &[u8], head_only: bool) -> Option<RawResponse> {
    split_response(raw, head_only).map(|(response, _)| response)
}

/// Parses one response from the front of `raw`, returning it and the bytes
/// after it (a following response on a kept-alive connection).
pub fn split_response(raw: &[u8], head_only: bool) -> Option<(RawResponse, &[u8])> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut parsed = httparse::Response::new(&mut headers);
    let head_len = match parsed.parse(raw).ok()? {
        httparse::Status::Complete(n) => n,
        httparse::Status::Partial => return None,
    };
    let status = parsed.code?;
    let headers: Vec<(String, String)> = parsed
        .headers
        .iter()
        .map(|h| {
            (
                h.name.to_ascii_lowercase(),
                String::from_utf8_lossy(h.value).into_owned(),
            )
        })
        .collect();
    let rest = &raw[head_len..];
    let find = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    let no_body = head_only || status == 304 || status == 204 || (100..200).contains(&status);
    let (body, complete, after) = if no_body {
        (Vec::new(), true, rest)
    } else if find("transfer-encoding").is_some_and(|te| te.eq_ignore_ascii_case("chunked")) {
        decode_chunked(rest)
    } else if let Some(length) = find("content-length") {
        let length: usize = length.parse().ok()?;
        let take = length.min(rest.len());
        (rest[..take].to_vec(), take == length, &rest[take..])
    } else {
        (rest.to_vec(), true, &rest[rest.len()..])
    };
    Some((
        RawResponse {
            status,
            headers,
            body,
            complete,
        },
        after,
    ))
}

/// Decodes a chunked body (RFC 9112 §7.1); `complete` only when the last
/// (zero-size) chunk and the final CRLF arrived.
fn decode_chunked(mut rest: &[u8]) -> (Vec<u8>, bool, &[u8]) {
    let mut body = Vec::new();
    loop {
        let Some(line_end) = find_crlf(rest) else {
            return (body, false, &[]);
        };
        let size_text = String::from_utf8_lossy(&rest[..line_end]);
        let size_text = size_text.split(';').next().unwrap_or("").trim();
        let Ok(size) = usize::from_str_radix(size_text, 16) else {
            return (body, false, &[]);
        };
        rest = &rest[line_end + 2..];
        if size == 0 {
            // Trailer section, then CRLF.
            loop {
                let Some(end) = find_crlf(rest) else {
                    return (body, false, &[]);
                };
                let line_empty = end == 0;
                rest = &rest[end + 2..];
                if line_empty {
                    return (body, true, rest);
                }
            }
        }
        if rest.len() < size + 2 {
            body.extend_from_slice(&rest[..size.min(rest.len())]);
            return (body, false, &[]);
        }
        body.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
}

fn find_crlf(bytes: &[u8]) -> Option<usize> {
    bytes.windows(2).position(|w| w == b"\r\n")
}
