//! Per-request CloudWatch metrics in the Embedded Metric Format (EMF).
//!
//! In Lambda mode (`MEDIA_METRICS=emf`, the default) each request writes one
//! EMF record to stdout when its access line is written, with the same values:
//! namespace `media-streamer`, dimension `FunctionName`, and the metrics
//! `Requests`, `BytesSent`, `TimeToFirstByte`, `Duration`, `ClientGone`,
//! `Status4xx`, `Status5xx` and `SourceErrors`.
//!
//! What the record must be, from AWS's documentation:
//! - "Specification: Embedded metric format" (CloudWatch User Guide): the log
//!   event is a JSON object with nothing before or after it; its `_aws` member
//!   holds `Timestamp` (milliseconds since the epoch) and `CloudWatchMetrics`,
//!   an array of directives `{Namespace, Dimensions: [[names]], Metrics:
//!   [{Name, Unit}]}`; each dimension is a root member with a string value and
//!   each metric a root member with a number value. Other root members are
//!   allowed and ignored.
//! - "Using the embedded metric format with Lambda" (same guide): Lambda sends
//!   what the function writes to stdout to CloudWatch Logs, which extracts
//!   metrics from the events that follow the specification; no agent.
//! - "Configuring JSON and plain text log formats" (Lambda Developer Guide):
//!   with the JSON log format, Lambda does not encode again a log line that is
//!   already JSON. So the record is written to stdout directly as one line of
//!   its own, never through the tracing formatter, which would nest it as a
//!   string inside another JSON line.
//! - "Log-level filtering" (Lambda Developer Guide): with the JSON log format,
//!   a line's level is its `level` member, INFO when missing, and lines below
//!   the function's application log level are dropped. The record therefore
//!   carries the configured level when that is above INFO, so that a function
//!   logging at WARN still publishes its metrics.
//!
//! The record is written with one `write` on the locked stdout, so it never
//! interleaves with tracing's lines (which take the same lock).

use std::fmt::Write as _;
use std::io::Write as _;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The CloudWatch namespace of the metrics.
pub const NAMESPACE: &str = "media-streamer";

/// The name of the one dimension; its value is the function's name.
pub const DIMENSION: &str = "FunctionName";

/// Every metric of a record, with its CloudWatch unit, in record order.
pub const METRICS: [(&str, &str); 8] = [
    ("Requests", "Count"),
    ("BytesSent", "Bytes"),
    ("TimeToFirstByte", "Milliseconds"),
    ("Duration", "Milliseconds"),
    ("ClientGone", "Count"),
    ("Status4xx", "Count"),
    ("Status5xx", "Count"),
    ("SourceErrors", "Count"),
];

/// The `MEDIA_METRICS` setting.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MetricsFormat {
    /// One EMF record per request on stdout.
    #[default]
    Emf,
    /// No metrics.
    Off,
}

impl FromStr for MetricsFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        if s.eq_ignore_ascii_case("emf") {
            Ok(MetricsFormat::Emf)
        } else if s.eq_ignore_ascii_case("off") {
            Ok(MetricsFormat::Off)
        } else {
            Err(format!("expected `emf` or `off`, got {s:?}"))
        }
    }
}

/// What one request's record says: the values of its access line.
#[derive(Clone, Debug, PartialEq)]
pub struct RequestSummary {
    pub status: u16,
    /// Body bytes handed to the transport.
    pub bytes_sent: u64,
    pub time_to_first_byte: Duration,
    pub duration: Duration,
    /// The client went away before the body ended.
    pub client_gone: bool,
    /// Reading the source failed after the head was sent.
    pub source_error: bool,
}

/// Where requests' metrics go: nowhere, or EMF records on stdout. Cheap to
/// clone; [`Metrics::default`] is off.
#[derive(Clone, Debug, Default)]
pub struct Metrics {
    emf: Option<Arc<Emf>>,
}

#[derive(Debug)]
struct Emf {
    function_name: String,
    level: Option<&'static str>,
}

impl Metrics {
    /// No metrics.
    pub fn off() -> Self {
        Metrics::default()
    }

    /// Metrics as `format` says, for the function `function_name`
    /// (`AWS_LAMBDA_FUNCTION_NAME`) whose application log level is
    /// `lambda_log_level` (`AWS_LAMBDA_LOG_LEVEL`, if set).
    pub fn new(format: MetricsFormat, function_name: &str, lambda_log_level: Option<&str>) -> Self {
        match format {
            MetricsFormat::Off => Metrics::off(),
            MetricsFormat::Emf => Metrics {
                emf: Some(Arc::new(Emf {
                    function_name: function_name.to_owned(),
                    level: record_level(lambda_log_level),
                })),
            },
        }
    }

    pub fn is_on(&self) -> bool {
        self.emf.is_some()
    }

    /// Writes the record of one request, stamped now.
    pub fn record(&self, summary: &RequestSummary) {
        let Some(emf) = &self.emf else {
            return;
        };
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis() as u64;
        let mut line = emf_record(summary, &emf.function_name, emf.level, now);
        line.push('\n');
        // One write of the whole line under the lock tracing's writer takes
        // too, so lines never interleave. A failed write loses the record.
        let mut stdout = std::io::stdout().lock();
        let _ = stdout.write_all(line.as_bytes());
        let _ = stdout.flush();
    }
}

/// The `level` member a record needs to pass Lambda's log-level filter: none
/// (INFO) unless the application log level is above INFO, then that level.
fn record_level(lambda_log_level: Option<&str>) -> Option<&'static str> {
    let level = lambda_log_level?;
    ["WARN", "ERROR", "FATAL"]
        .into_iter()
        .find(|l| level.eq_ignore_ascii_case(l))
}

/// One EMF record (a JSON object, without a line end) for `summary`, with the
/// dimension value `function_name`, an optional `level` member and the
/// timestamp `timestamp_ms` (milliseconds since the Unix epoch).
pub fn emf_record(
    summary: &RequestSummary,
    function_name: &str,
    level: Option<&str>,
    timestamp_ms: u64,
) -> String {
    let mut out = String::with_capacity(640);
    let _ = write!(
        out,
        r#"{{"_aws":{{"Timestamp":{timestamp_ms},"CloudWatchMetrics":[{{"Namespace":"#
    );
    push_json_string(&mut out, NAMESPACE);
    out.push_str(r#","Dimensions":[["#);
    push_json_string(&mut out, DIMENSION);
    out.push_str(r#"]],"Metrics":["#);
    for (i, (name, unit)) in METRICS.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, r#"{{"Name":"{name}","Unit":"{unit}"}}"#);
    }
    out.push_str("]}]},");
    push_json_string(&mut out, DIMENSION);
    out.push(':');
    push_json_string(&mut out, function_name);
    let flag = |b: bool| u8::from(b);
    let _ = write!(
        out,
        r#","Requests":1,"BytesSent":{},"TimeToFirstByte":{},"Duration":{},"ClientGone":{},"Status4xx":{},"Status5xx":{},"SourceErrors":{}"#,
        summary.bytes_sent,
        millis(summary.time_to_first_byte),
        millis(summary.duration),
        flag(summary.client_gone),
        flag((400..500).contains(&summary.status)),
        flag((500..600).contains(&summary.status)),
        flag(summary.source_error),
    );
    if let Some(level) = level {
        out.push_str(r#","level":"#);
        push_json_string(&mut out, level);
    }
    out.push('}');
    out
}

/// Milliseconds to the microsecond, as the access line writes them. `f64`'s
/// `Display` never uses an exponent, so this is a valid JSON number.
fn millis(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

/// Appends `s` as a JSON string (RFC 8259 §7).
fn push_json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary() -> RequestSummary {
        RequestSummary {
            status: 206,
            bytes_sent: 1024,
            time_to_first_byte: Duration::from_micros(3_517),
            duration: Duration::from_micros(12_000),
            client_gone: false,
            source_error: false,
        }
    }

    #[test]
    fn writes_the_specified_layout() {
        let record = emf_record(&summary(), "media-fn", None, 1_700_000_000_123);
        assert_eq!(
            record,
            concat!(
                r#"{"_aws":{"Timestamp":1700000000123,"CloudWatchMetrics":[{"Namespace":"media-streamer","Dimensions":[["FunctionName"]],"Metrics":["#,
                r#"{"Name":"Requests","Unit":"Count"},{"Name":"BytesSent","Unit":"Bytes"},"#,
                r#"{"Name":"TimeToFirstByte","Unit":"Milliseconds"},{"Name":"Duration","Unit":"Milliseconds"},"#,
                r#"{"Name":"ClientGone","Unit":"Count"},{"Name":"Status4xx","Unit":"Count"},"#,
                r#"{"Name":"Status5xx","Unit":"Count"},{"Name":"SourceErrors","Unit":"Count"}]}]},"#,
                r#""FunctionName":"media-fn","Requests":1,"BytesSent":1024,"TimeToFirstByte":3.517,"Duration":12,"#,
                r#""ClientGone":0,"Status4xx":0,"Status5xx":0,"SourceErrors":0}"#
            )
        );
    }

    #[test]
    fn counts_status_classes_and_failures() {
        let cases = [
            (304, false, false, [0, 0, 0, 0]),
            (404, false, false, [0, 1, 0, 0]),
            (499, false, false, [0, 1, 0, 0]),
            (500, false, false, [0, 0, 1, 0]),
            (503, false, true, [0, 0, 1, 1]),
            (206, true, false, [1, 0, 0, 0]),
            (206, false, true, [0, 0, 0, 1]),
        ];
        for (status, client_gone, source_error, expected) in cases {
            let s = RequestSummary {
                status,
                client_gone,
                source_error,
                ..summary()
            };
            let record = emf_record(&s, "f", None, 0);
            let got = ["ClientGone", "Status4xx", "Status5xx", "SourceErrors"].map(|name| {
                let key = format!("\"{name}\":");
                let at = record.find(&key).unwrap() + key.len();
                record[at..at + 1].parse::<u8>().unwrap()
            });
            assert_eq!(got, expected, "{status} {client_gone} {source_error}");
        }
    }

    #[test]
    fn escapes_the_function_name() {
        let record = emf_record(&summary(), "a\"b\\c\n\u{1}é", None, 0);
        assert!(
            record.contains(r#""FunctionName":"a\"b\\c\n\u0001é","#),
            "{record}"
        );
        assert!(!record.contains('\n'));
    }

    #[test]
    fn carries_a_level_only_above_info() {
        for (configured, expected) in [
            (None, None),
            (Some("INFO"), None),
            (Some("debug"), None),
            (Some("TRACE"), None),
            (Some("warn"), Some("WARN")),
            (Some("ERROR"), Some("ERROR")),
            (Some("FATAL"), Some("FATAL")),
            (Some("nonsense"), None),
        ] {
            assert_eq!(record_level(configured), expected, "{configured:?}");
        }
        let record = emf_record(&summary(), "f", Some("WARN"), 0);
        assert!(
            record.ends_with(r#","SourceErrors":0,"level":"WARN"}"#),
            "{record}"
        );
    }

    #[test]
    fn reads_the_setting() {
        assert_eq!("emf".parse(), Ok(MetricsFormat::Emf));
        assert_eq!("OFF".parse(), Ok(MetricsFormat::Off));
        assert!("on".parse::<MetricsFormat>().is_err());
        assert_eq!(MetricsFormat::default(), MetricsFormat::Emf);
        assert!(!Metrics::new(MetricsFormat::Off, "f", None).is_on());
        assert!(Metrics::new(MetricsFormat::Emf, "f", None).is_on());
    }
}
