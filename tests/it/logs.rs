//! The JSON log lines of a child process, collected as they are written.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::ChildStdout;

#[derive(Clone)]
pub struct JsonLog {
    lines: Arc<Mutex<Vec<serde_json::Value>>>,
}

impl JsonLog {
    /// Collects every line of `stdout`; a line that is not JSON is a test
    /// failure when `strict` (the binary is set to log JSON only), else skipped.
    pub fn follow(stdout: ChildStdout, strict: bool) -> Self {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&lines);
        tokio::spawn(async move {
            let mut reader = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                match serde_json::from_str(&line) {
                    Ok(value) => sink.lock().unwrap().push(value),
                    Err(e) if strict => panic!("log line is not JSON ({e}): {line}"),
                    Err(_) => {}
                }
            }
        });
        JsonLog { lines }
    }

    /// Waits (up to `timeout`) for a line that `matches`.
    pub async fn wait_for(
        &self,
        timeout: Duration,
        matches: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(line) = self.lines.lock().unwrap().iter().find(|l| matches(l)) {
                return line.clone();
            }
            assert!(
                Instant::now() < deadline,
                "no such log line; got {:?}",
                self.lines.lock().unwrap()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The lines so far that `keep`.
    pub fn lines(&self, keep: impl Fn(&serde_json::Value) -> bool) -> Vec<serde_json::Value> {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .filter(|l| keep(l))
            .cloned()
            .collect()
    }
}
