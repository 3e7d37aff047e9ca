//! Faults: an object replaced between requests, clients that read one byte a
//! second, and clients that vanish at random points.

use std::sync::Arc;
use std::time::{Duration, Instant};

use media_streamer::service::MediaService;
use media_streamer::source::dir::DirSource;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::client::send;
use crate::fixture::{default_local, pattern, settings, TestServer};

/// Replaces `path` with `data` the way deployments do: a new file renamed
/// over the old one.
fn replace(path: &std::path::Path, data: &[u8]) {
    let new = path.with_extension("new");
    std::fs::write(&new, data).unwrap();
    std::fs::rename(&new, path).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replaced_object_is_never_mixed_with_the_old_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("clip.mp4");
    let (old, new) = (pattern(10_000, 1), pattern(10_000, 2));
    std::fs::write(&path, &old).unwrap();
    let server = TestServer::start(dir.path(), default_local()).await;

    let first = send(server.addr, "GET", "/clip.mp4", &[("Range", "bytes=0-99")]).await;
    assert_eq!(first.body, old[..100]);
    let old_etag = first.header("etag").unwrap().to_owned();
    // A different mtime even on coarse clocks.
    std::thread::sleep(Duration::from_millis(20));
    replace(&path, &new);

    // If-Range with the old validator: the whole new object, 200.
    let resumed = send(
        server.addr,
        "GET",
        "/clip.mp4",
        &[("Range", "bytes=100-199"), ("If-Range", &old_etag)],
    )
    .await;
    assert_eq!(resumed.status, 200);
    assert_eq!(resumed.body, new);
    let new_etag = resumed.header("etag").unwrap().to_owned();
    assert_ne!(new_etag, old_etag);

    // Several ranges: every part from the new object, under its ETag.
    let parts = send(
        server.addr,
        "GET",
        "/clip.mp4",
        &[("Range", "bytes=0-9,5000-5009,9990-9999")],
    )
    .await;
    assert_eq!(parts.status, 206);
    assert_eq!(parts.header("etag"), Some(new_etag.as_str()));
    let body = parts.body;
    for (first, last) in [(0usize, 9usize), (5000, 5009), (9990, 9999)] {
        let expected = &new[first..=last];
        let found = body.windows(expected.len()).any(|w| w == expected);
        let stale = body.windows(10).any(|w| w == &old[first..=last]);
        assert!(found && !stale, "part {first}-{last}");
    }
    // If-Match with the old ETag: 412, nothing of either version.
    let stale = send(server.addr, "GET", "/clip.mp4", &[("If-Match", &old_etag)]).await;
    assert_eq!(stale.status, 412);
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_reading_a_byte_a_second_hold_a_bounded_amount_each() {
    // Loads the machine: kept apart from the tests that measure time.
    let _serial = crate::MEASURE.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let file = std::fs::File::create(dir.path().join("big.mp4")).unwrap();
    file.set_len(512 << 20).unwrap();
    drop(file);
    // What the server holds is counted by its source, chunk by chunk, from
    // a read buffer's allocation to its last reference (the connection's
    // write queue): a count the machine's load cannot change, unlike the
    // process's resident memory, which also holds whatever the allocator
    // and the threads of a busy moment keep.
    let source = DirSource::new(dir.path()).unwrap();
    let held = source.held_bytes();
    let service = MediaService::new(Arc::new(source), settings());
    let server = TestServer::start_service(service, default_local()).await;
    const CLIENTS: u64 = 50;
    // 50 clients ask for 256 MiB each, then read one byte a second.
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        let mut stream = TcpStream::connect(server.addr).await.unwrap();
        stream
            .write_all(b"GET /big.mp4 HTTP/1.1\r\nHost: x\r\nRange: bytes=0-268435455\r\n\r\n")
            .await
            .unwrap();
        clients.push(stream);
    }
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(5) {
        for stream in &mut clients {
            let mut byte = [0u8; 1];
            stream.read_exact(&mut byte).await.unwrap();
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let (now, peak) = (held.now(), held.peak());
    let chunk = media_streamer::source::dir::READ_CHUNK_BYTES as u64;
    println!(
        "file bytes held with {CLIENTS} slow clients: {} KiB now, {} KiB at most ({} KiB each at most; a read chunk is {} KiB)",
        now / 1024,
        peak / 1024,
        peak / CLIENTS / 1024,
        chunk / 1024
    );
    // Each slow response holds the chunk its socket has not taken yet, and at
    // most one more (the connection queues up to one chunk's worth, then
    // reads no further until that drains): never less than one, never more
    // than two.
    assert!(peak <= CLIENTS * 2 * chunk, "{peak} bytes held at most");
    assert!(
        now >= CLIENTS * chunk,
        "{now} bytes held: are the clients slow?"
    );
    drop(clients);
    server.stop().await.unwrap();
    // Every chunk is let go with its connection. A read already on the
    // blocking pool when its connection went finishes there and drops its
    // buffer then: a moment after the stop, not never.
    let left = Instant::now();
    while held.now() != 0 && left.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        held.now(),
        0,
        "bytes still held 10 s after the clients left"
    );
}

#[test]
fn connections_dropped_anywhere_leave_no_tasks_or_descriptors() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("clip.mp4"), pattern(4 << 20, 3)).unwrap();
    // The server alone on a runtime of its own, so its tasks can be counted.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let service = MediaService::new(Arc::new(DirSource::new(dir.path()).unwrap()), settings());
    let server = runtime.block_on(TestServer::start_service(service, default_local()));
    let addr = server.addr;
    // The server's own connection descriptors: sockets on its port that are
    // still open on its side (established, or closed by the client only).
    let fds = || open_sockets_on(addr.port());
    let tasks = || runtime.metrics().num_alive_tasks();

    let client = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // Warm up: the file is opened once and kept (the open-file cache).
    client.block_on(async {
        send(addr, "GET", "/clip.mp4", &[("Range", "bytes=0-0")]).await;
    });
    std::thread::sleep(Duration::from_millis(200));
    let (fds_before, tasks_before) = (fds(), tasks());
    // The counts see an open connection: one socket, one more task.
    let held = client.block_on(async {
        let stream = TcpStream::connect(addr).await.unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        stream
    });
    assert_eq!((fds(), tasks()), (fds_before + 1, tasks_before + 1));
    drop(held);

    client.block_on(async {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut handles = Vec::new();
        for i in 0..200u64 {
            let (stop_after, range_end) = (next() % 300_000, next() % (4 << 20));
            handles.push(tokio::spawn(async move {
                let mut stream = TcpStream::connect(addr).await.unwrap();
                let request = match i % 4 {
                    // Gone before the head is complete.
                    0 => "GET /clip.mp4 HTTP/1.1\r\nHost: x\r\nRan".to_owned(),
                    // A range, left after some of it.
                    1 => format!("GET /clip.mp4 HTTP/1.1\r\nHost: x\r\nRange: bytes=0-{range_end}\r\n\r\n"),
                    // The whole file, left after some of it.
                    2 => "GET /clip.mp4 HTTP/1.1\r\nHost: x\r\n\r\n".to_owned(),
                    // Several ranges, left after some of them.
                    _ => "GET /clip.mp4 HTTP/1.1\r\nHost: x\r\nRange: bytes=0-99999,2000000-2999999\r\n\r\n".to_owned(),
                };
                stream.write_all(request.as_bytes()).await.unwrap();
                let mut read = 0u64;
                let mut buf = vec![0u8; 16 * 1024];
                while read < stop_after {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => read += n as u64,
                    }
                }
                drop(stream);
            }));
        }
        for handle in handles {
            handle.await.unwrap();
        }
    });
    // Let the server notice every departure.
    let deadline = Instant::now() + Duration::from_secs(10);
    while (fds() > fds_before || tasks() > tasks_before) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    println!(
        "before: {fds_before} descriptors, {tasks_before} tasks; after 200 dropped connections: {} descriptors, {} tasks",
        fds(),
        tasks()
    );
    assert!(fds() <= fds_before, "descriptors leaked");
    assert!(tasks() <= tasks_before, "tasks leaked");
    runtime.block_on(server.stop()).unwrap();
}

/// Sockets whose local port is `port` in state ESTABLISHED (01) or CLOSE_WAIT
/// (08): connections the process on that port still holds open.
pub(crate) fn open_sockets_on(port: u16) -> usize {
    ["/proc/self/net/tcp", "/proc/self/net/tcp6"]
        .iter()
        .filter_map(|path| std::fs::read_to_string(path).ok())
        .flat_map(|table| {
            table
                .lines()
                .skip(1)
                .filter(|line| {
                    let fields: Vec<&str> = line.split_whitespace().collect();
                    let local_port = fields
                        .get(1)
                        .and_then(|a| a.rsplit(':').next())
                        .and_then(|p| u16::from_str_radix(p, 16).ok());
                    local_port == Some(port) && matches!(fields.get(3), Some(&"01" | &"08"))
                })
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .count()
}
