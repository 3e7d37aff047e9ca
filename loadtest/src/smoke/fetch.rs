//! The I/O: one request out, its answer read into an [`Exchange`], the body
//! up to a limit (a server that ignores a Range must not make the test read a
//! whole large object).

use std::time::{Duration, Instant};

use http::header::HeaderName;
use http::{HeaderValue, Method, Uri};
use http_body_util::BodyExt;

use super::exchange::Exchange;
use crate::{error_chain, http_client, request, HttpClient};

/// Sends the smoke test's requests, one at a time.
pub struct Fetcher {
    client: HttpClient,
    timeout: Duration,
}

impl Fetcher {
    pub fn new(timeout: Duration) -> Result<Self, String> {
        Ok(Fetcher {
            client: http_client(2)?,
            timeout,
        })
    }

    /// Sends `method` to `uri` with `fields`, and reads the answer, keeping at
    /// most `keep` body bytes (and reading no further). The error says what
    /// was asked and why no answer came.
    pub async fn fetch(
        &self,
        method: Method,
        uri: &Uri,
        fields: &[(HeaderName, &str)],
        keep: usize,
    ) -> Result<Exchange, String> {
        let mut asked = method.to_string();
        for (name, value) in fields {
            asked.push_str(&format!(" {name}: {value}"));
        }
        let mut request = request(method, uri);
        for (name, value) in fields {
            let value =
                HeaderValue::from_str(value).map_err(|_| format!("{asked}: not a field value"))?;
            request.headers_mut().append(name.clone(), value);
        }
        let started = Instant::now();
        let deadline = tokio::time::Instant::from(started + self.timeout);
        let response = match tokio::time::timeout_at(deadline, self.client.request(request)).await {
            Ok(Ok(response)) => response,
            Ok(Err(e)) => {
                return Err(format!(
                    "{asked}: could not connect or send: {}",
                    error_chain(&e)
                ))
            }
            Err(_) => return Err(format!("{asked}: no answer within {:?}", self.timeout)),
        };
        let (parts, mut body) = response.into_parts();
        let mut exchange = Exchange {
            asked,
            status: parts.status,
            headers: parts.headers,
            body: Vec::new(),
            ended: false,
            body_error: None,
            ttfb: None,
            last_byte: None,
        };
        loop {
            match tokio::time::timeout_at(deadline, body.frame()).await {
                Err(_) => {
                    exchange.body_error = Some(format!("no end within {:?}", self.timeout));
                    break;
                }
                Ok(None) => {
                    exchange.ended = true;
                    break;
                }
                Ok(Some(Err(e))) => {
                    exchange.body_error = Some(error_chain(&e));
                    break;
                }
                Ok(Some(Ok(frame))) => {
                    let Ok(data) = frame.into_data() else {
                        continue; // trailers
                    };
                    if data.is_empty() {
                        continue;
                    }
                    if exchange.ttfb.is_none() {
                        exchange.ttfb = Some(started.elapsed());
                    }
                    exchange.last_byte = Some(started.elapsed());
                    let room = keep.saturating_sub(exchange.body.len());
                    exchange
                        .body
                        .extend_from_slice(&data[..data.len().min(room)]);
                    if data.len() > room || exchange.body.len() >= keep {
                        // Dropping the body closes the connection.
                        break;
                    }
                }
            }
        }
        Ok(exchange)
    }
}
