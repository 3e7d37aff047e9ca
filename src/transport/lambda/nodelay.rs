//! TCP_NODELAY on the connections to the Runtime API, and on no others.
//!
//! Runtime behaviour: lambda_runtime's client for the Runtime API leaves
//! Nagle's algorithm on, and a streamed response goes out as several small
//! writes (request head, JSON prelude, eight NUL bytes, then the body): Nagle
//! holds the later ones until the first is acknowledged, and the receiver
//! delays that ACK by up to 40 ms, so a small response's first byte waited
//! that long.
//!
//! There is no hook to set the option when a connection is made: in
//! lambda_runtime 1.5 `Runtime::new` builds its `PooledClient` itself, with a
//! default hyper-util `HttpConnector` (nodelay off). The client builder has
//! `with_connector` (and `HttpConnector::set_nodelay`), but the runtime's
//! client field is private and the services that carry it
//! (`RuntimeApiClientService`, `wrap_handler`) are crate-private, so a runtime
//! cannot be given another client. So when a response's body is first polled
//! (the connection carrying it is open by then), the process's descriptors
//! are scanned and the option is set on each TCP socket whose peer is the
//! address in `AWS_LAMBDA_RUNTIME_API`, which also flushes what Nagle holds.
//! Other sockets (S3 connections) keep their settings. The scan costs a read
//! of `/proc/self/fd` and one `getpeername` per descriptor (a few dozen system
//! calls: about 0.07 ms in the unit test below, in a debug build); the address
//! is resolved once, when the function starts.
//!
//! Shown by: `tests/it/lambda.rs` `first_byte_does_not_wait_for_the_object`:
//! the median time to the first byte of a 1 KiB range through the emulator is
//! a few milliseconds, and would be 40 ms or more without this.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};

use http::Uri;

/// The addresses of the Runtime API, whose connections get TCP_NODELAY.
#[derive(Debug, Default)]
pub(crate) struct RuntimeApiSockets {
    /// Canonical IP (IPv4-mapped IPv6 as IPv4) and port of each address the
    /// Runtime API's host resolves to.
    peers: Vec<(IpAddr, u16)>,
}

impl RuntimeApiSockets {
    /// The sockets of the Runtime API at `runtime_api`, the value of
    /// `AWS_LAMBDA_RUNTIME_API`: `host:port` on Lambda, or a URI such as
    /// `http://127.0.0.1:9001/.rt` (the emulator), read as the runtime's client
    /// reads it. The host is resolved now, once.
    pub(crate) fn resolve(runtime_api: &str) -> Result<Self, String> {
        let uri: Uri = runtime_api
            .parse()
            .map_err(|e| format!("AWS_LAMBDA_RUNTIME_API {runtime_api:?}: {e}"))?;
        let host = uri
            .host()
            .ok_or_else(|| format!("AWS_LAMBDA_RUNTIME_API {runtime_api:?}: no host"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let port = uri.port_u16().unwrap_or(match uri.scheme_str() {
            Some("https") => 443,
            _ => 80,
        });
        let addrs = (host, port)
            .to_socket_addrs()
            .map_err(|e| format!("AWS_LAMBDA_RUNTIME_API {runtime_api:?}: {e}"))?;
        let mut peers: Vec<(IpAddr, u16)> = addrs.map(|a| canonical(&a)).collect();
        peers.dedup();
        Ok(RuntimeApiSockets { peers })
    }

    /// Sets TCP_NODELAY on every open socket connected to the Runtime API.
    /// Returns how many sockets were set.
    pub(crate) fn set_nodelay(&self) -> usize {
        if self.peers.is_empty() {
            return 0;
        }
        let Ok(entries) = std::fs::read_dir("/proc/self/fd") else {
            return 0;
        };
        let mut set = 0;
        for entry in entries.flatten() {
            let Some(fd) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<libc::c_int>().ok())
            else {
                continue;
            };
            // A descriptor closed and reused meanwhile is judged by its new
            // peer: only a socket connected to the Runtime API is changed.
            let Some(peer) = peer_addr(fd) else {
                continue;
            };
            if self.peers.contains(&canonical(&peer)) && set_nodelay(fd) {
                set += 1;
            }
        }
        set
    }
}

fn canonical(addr: &SocketAddr) -> (IpAddr, u16) {
    (addr.ip().to_canonical(), addr.port())
}

/// The peer of socket `fd`, or `None` when `fd` is not a connected IP socket.
fn peer_addr(fd: libc::c_int) -> Option<SocketAddr> {
    // SAFETY: sockaddr_storage is plain data, valid when zeroed; getpeername
    // writes at most `len` bytes into it and sets `len` to what it wrote.
    unsafe {
        let mut storage: libc::sockaddr_storage = std::mem::zeroed();
        let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        if libc::getpeername(
            fd,
            (&mut storage as *mut libc::sockaddr_storage).cast(),
            &mut len,
        ) != 0
        {
            return None;
        }
        match libc::c_int::from(storage.ss_family) {
            libc::AF_INET if len as usize >= std::mem::size_of::<libc::sockaddr_in>() => {
                let sin = &*(&storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>();
                let ip = Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
                Some(SocketAddr::new(ip.into(), u16::from_be(sin.sin_port)))
            }
            libc::AF_INET6 if len as usize >= std::mem::size_of::<libc::sockaddr_in6>() => {
                let sin6 =
                    &*(&storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>();
                let ip = Ipv6Addr::from(sin6.sin6_addr.s6_addr);
                Some(SocketAddr::new(ip.into(), u16::from_be(sin6.sin6_port)))
            }
            _ => None,
        }
    }
}

/// Sets TCP_NODELAY on `fd`; false if the socket refuses it (not TCP).
fn set_nodelay(fd: libc::c_int) -> bool {
    let on: libc::c_int = 1;
    // SAFETY: setsockopt only reads `on`, whose size is passed.
    unsafe {
        libc::setsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_NODELAY,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        ) == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{TcpListener, TcpStream};

    #[test]
    fn reads_the_runtime_api_address_as_the_runtime_client_does() {
        for (value, expected) in [
            ("127.0.0.1:9001", "127.0.0.1:9001"),
            ("http://127.0.0.1:9001/.rt", "127.0.0.1:9001"),
            ("http://127.0.0.1/.rt", "127.0.0.1:80"),
            ("[::1]:9001", "[::1]:9001"),
            ("http://[::ffff:127.0.0.1]:9001", "127.0.0.1:9001"),
        ] {
            let sockets = RuntimeApiSockets::resolve(value).unwrap();
            let expected: SocketAddr = expected.parse().unwrap();
            assert_eq!(sockets.peers, [canonical(&expected)], "{value}");
        }
        let localhost = RuntimeApiSockets::resolve("localhost:9001").unwrap();
        assert!(localhost
            .peers
            .iter()
            .all(|(ip, port)| ip.is_loopback() && *port == 9001));
        assert!(RuntimeApiSockets::resolve("").is_err());
    }

    #[test]
    fn sets_nodelay_on_runtime_api_connections_only() {
        let api = TcpListener::bind("127.0.0.1:0").unwrap();
        let other = TcpListener::bind("127.0.0.1:0").unwrap();
        let to_api = TcpStream::connect(api.local_addr().unwrap()).unwrap();
        let to_other = TcpStream::connect(other.local_addr().unwrap()).unwrap();
        let sockets =
            RuntimeApiSockets::resolve(&format!("http://{}/.rt", api.local_addr().unwrap()))
                .unwrap();
        assert!(sockets.set_nodelay() >= 1);
        assert!(to_api.nodelay().unwrap());
        assert!(!to_other.nodelay().unwrap());

        let started = std::time::Instant::now();
        for _ in 0..1000 {
            sockets.set_nodelay();
        }
        println!("one scan: {:?}", started.elapsed() / 1000);
    }
}
