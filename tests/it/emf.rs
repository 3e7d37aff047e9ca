//! The function's CloudWatch metrics through the emulator: one Embedded
//! Metric Format record per request on its stdout, a JSON object of its own
//! with the layout CloudWatch extracts, and values equal to what the client
//! got and to the request's access line.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use crate::client::{leave_mid_body, send};
use crate::fixture::Fixture;
use crate::lambda::Emulated;

const FUNCTION_NAME: &str = "media-streamer-test";
const MIB: u64 = 1024 * 1024;

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn is_record(line: &Value) -> bool {
    line.get("_aws").is_some()
}

/// Waits (up to 20 s) until the function has written `n` lines that `keep`,
/// and returns them.
async fn wait_for_lines(
    emulated: &Emulated,
    n: usize,
    keep: impl Fn(&Value) -> bool + Copy,
) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let lines = emulated.log_lines(keep);
        if lines.len() >= n {
            return lines;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {n} lines: {lines:?}",
            lines.len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Checks the record's layout against the EMF specification: `_aws` with a
/// millisecond timestamp and one metric directive, every metric and the
/// dimension present at the root with a value of the right type.
fn check_layout(record: &Value, since_ms: u64) {
    let aws = record["_aws"].as_object().expect("_aws is an object");
    assert_eq!(aws.len(), 2, "{record}");
    let timestamp = aws["Timestamp"].as_u64().expect("a millisecond timestamp");
    assert!(
        (since_ms..=now_ms()).contains(&timestamp),
        "timestamp {timestamp} not in this test's time"
    );
    let directives = aws["CloudWatchMetrics"].as_array().unwrap();
    assert_eq!(directives.len(), 1, "{record}");
    assert_eq!(
        directives[0],
        json!({
            "Namespace": "media-streamer",
            "Dimensions": [["FunctionName"]],
            "Metrics": [
                {"Name": "Requests", "Unit": "Count"},
                {"Name": "BytesSent", "Unit": "Bytes"},
                {"Name": "TimeToFirstByte", "Unit": "Milliseconds"},
                {"Name": "Duration", "Unit": "Milliseconds"},
                {"Name": "ClientGone", "Unit": "Count"},
                {"Name": "Status4xx", "Unit": "Count"},
                {"Name": "Status5xx", "Unit": "Count"},
                {"Name": "SourceErrors", "Unit": "Count"},
            ],
        })
    );
    assert_eq!(record["FunctionName"], FUNCTION_NAME);
    for metric in directives[0]["Metrics"].as_array().unwrap() {
        let name = metric["Name"].as_str().unwrap();
        let value = record[name].as_f64();
        assert!(value.is_some_and(|v| v >= 0.0), "{name} in {record}");
    }
    assert_eq!(record["Requests"], 1);
    let (ttfb, duration) = (
        record["TimeToFirstByte"].as_f64().unwrap(),
        record["Duration"].as_f64().unwrap(),
    );
    assert!(ttfb <= duration, "{record}");
}

/// The values a record must hold: the status class, what the client got,
/// and the access line's own figures.
fn check_values(record: &Value, access: &Value, status: u16, client_bytes: usize) {
    assert_eq!(access["status"], status, "{access}");
    assert_eq!(record["BytesSent"], client_bytes as u64, "{record}");
    assert_eq!(record["BytesSent"], access["bytes_sent"]);
    assert_eq!(
        record["TimeToFirstByte"], access["ttfb_ms"],
        "{record} {access}"
    );
    assert_eq!(
        record["Duration"], access["duration_ms"],
        "{record} {access}"
    );
    let class = |range: std::ops::Range<u16>| u8::from(range.contains(&status));
    assert_eq!(record["Status4xx"], class(400..500), "{record}");
    assert_eq!(record["Status5xx"], class(500..600), "{record}");
    assert_eq!(record["ClientGone"], 0, "{record}");
    assert_eq!(record["SourceErrors"], 0, "{record}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_one_emf_record_per_request_through_the_emulator() {
    let fixture = Fixture::new();
    let big = std::fs::File::create(fixture.root.join("big.mp4")).unwrap();
    big.set_len(100 * MIB).unwrap();
    drop(big);
    let env = [("AWS_LAMBDA_FUNCTION_NAME", FUNCTION_NAME.to_owned())];
    let emulated = Emulated::start_with(&fixture.root, &env).await;
    let since = now_ms();

    let etag = fixture.validators("bytes.bin").etag;
    let requests = [
        ("GET", "/bytes.bin", vec![("Range", "bytes=0-1023")], 206),
        ("GET", "/sub/clip.webm", vec![], 200),
        ("GET", "/missing.mp4", vec![], 404),
        ("GET", "/bytes.bin", vec![("If-None-Match", &etag)], 304),
        ("HEAD", "/bytes.bin", vec![], 200),
        ("GET", "/sub/../bytes.bin", vec![], 400),
    ];
    for (i, (method, target, headers, status)) in requests.iter().enumerate() {
        let response = send(emulated.addr, method, target, headers).await;
        assert_eq!(response.status, *status, "{method} {target}");
        let records = wait_for_lines(&emulated, i + 1, is_record).await;
        let access = wait_for_lines(&emulated, i + 1, |l| l["target"] == "access").await;
        assert_eq!(records.len(), i + 1, "one record per request: {records:?}");
        check_layout(&records[i], since);
        check_values(&records[i], &access[i], *status, response.body.len());
    }

    // A client that goes away mid-body.
    let received = leave_mid_body(emulated.addr, "/big.mp4", 100 * MIB, MIB).await;
    let n = requests.len() + 1;
    let records = wait_for_lines(&emulated, n, is_record).await;
    let access = wait_for_lines(&emulated, n, |l| l["target"] == "access").await;
    let (record, access) = (&records[n - 1], &access[n - 1]);
    check_layout(record, since);
    assert_eq!(access["client_gone"], true, "{access}");
    assert_eq!(record["ClientGone"], 1, "{record}");
    assert_eq!(record["SourceErrors"], 0, "{record}");
    assert_eq!(record["BytesSent"], access["bytes_sent"]);
    // The client read the head too, so it got fewer body bytes than this.
    assert!(
        record["BytesSent"].as_u64().unwrap() + 4096 >= received,
        "{record}"
    );
    assert!(
        record["BytesSent"].as_u64().unwrap() < 100 * MIB,
        "{record}"
    );
    println!("a record: {record}");

    // Records are lines of their own, never nested in another log line.
    let nested = emulated.log_lines(|l| !is_record(l) && l.to_string().contains("_aws"));
    assert!(nested.is_empty(), "{nested:?}");
    assert_eq!(emulated.log_lines(is_record).len(), n);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_no_record_when_metrics_are_off() {
    let fixture = Fixture::new();
    let env = [("MEDIA_METRICS", "off".to_owned())];
    let emulated = Emulated::start_with(&fixture.root, &env).await;
    for target in ["/bytes.bin", "/missing.mp4"] {
        send(emulated.addr, "GET", target, &[]).await;
    }
    wait_for_lines(&emulated, 2, |l| l["target"] == "access").await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(emulated.log_lines(is_record).is_empty());
}

/// Lambda drops JSON lines below the function's application log level and
/// reads a line without `level` as INFO: at WARN, the access line is not
/// written but the record is, marked WARN.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_pass_a_log_level_above_info() {
    let fixture = Fixture::new();
    let env = [
        ("AWS_LAMBDA_FUNCTION_NAME", FUNCTION_NAME.to_owned()),
        ("AWS_LAMBDA_LOG_LEVEL", "WARN".to_owned()),
    ];
    let emulated = Emulated::launch(&fixture.root, &env).await;
    let since = now_ms();
    let response = send(
        emulated.addr,
        "GET",
        "/bytes.bin",
        &[("Range", "bytes=0-99")],
    )
    .await;
    assert_eq!(response.status, 206);
    let records = wait_for_lines(&emulated, 1, is_record).await;
    check_layout(&records[0], since);
    assert_eq!(records[0]["level"], "WARN");
    assert_eq!(records[0]["BytesSent"], 100);
    assert!(emulated.log_lines(|l| l["target"] == "access").is_empty());
}
