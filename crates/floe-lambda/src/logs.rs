//! Logs of execution environments: one log stream (a file) per environment, fed
//! by the environment's stdout and stderr and by the invoker's `START`, `END` and
//! `REPORT` lines, with a capture of each invocation's lines for Lambda's log tail.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use tokio::net::unix::pipe;
use tokio::sync::{mpsc, oneshot};

use crate::time::Utc;

/// Lambda splits longer lines.
const MAX_LINE: usize = 256 * 1024;
/// What a log tail returns: the last 4 KB of the invocation's lines.
pub const TAIL_BYTES: usize = 4096;

/// One environment's log stream.
pub(crate) struct LogStream {
    /// `2026/11/23/[$LATEST]<id>`, Lambda's stream name.
    pub name: String,
    file: Mutex<File>,
    capture: Mutex<Option<Vec<u8>>>,
}

impl LogStream {
    pub fn create(dir: &Path, env_id: &str) -> std::io::Result<Arc<LogStream>> {
        fs::create_dir_all(dir)?;
        let date = Utc::from_millis(crate::time::now_millis()).date_path();
        let path = dir.join(format!("{}-{env_id}.log", date.replace('/', "-")));
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(Arc::new(LogStream {
            name: format!("{date}/[{}]{env_id}", crate::model::LATEST),
            file: Mutex::new(file),
            capture: Mutex::new(None),
        }))
    }

    pub fn line(&self, line: &[u8]) {
        let mut file = self.file.lock().expect("log file");
        let mut buf = Vec::with_capacity(line.len() + 1);
        buf.extend_from_slice(line);
        buf.push(b'\n');
        if let Err(e) = file.write_all(&buf) {
            tracing::warn!("log stream {}: {e}", self.name);
        }
        if let Some(capture) = self.capture.lock().expect("log capture").as_mut() {
            capture.extend_from_slice(&buf);
            // Keep a little more than the tail needs.
            if capture.len() > 4 * TAIL_BYTES {
                capture.drain(..capture.len() - 2 * TAIL_BYTES);
            }
        }
    }

    pub fn start_capture(&self) {
        *self.capture.lock().expect("log capture") = Some(Vec::new());
    }

    /// The last 4 KB captured since `start_capture`, and stops capturing.
    pub fn take_capture(&self) -> Vec<u8> {
        let mut captured = self.capture.lock().expect("log capture").take().unwrap_or_default();
        if captured.len() > TAIL_BYTES {
            captured.drain(..captured.len() - TAIL_BYTES);
        }
        captured
    }
}

/// Reads an environment's output pipe into its log stream.
pub(crate) struct LogPump {
    sync_tx: mpsc::UnboundedSender<oneshot::Sender<()>>,
}

impl LogPump {
    pub fn start(reader: pipe::Receiver, stream: Arc<LogStream>) -> LogPump {
        let (sync_tx, sync_rx) = mpsc::unbounded_channel();
        tokio::spawn(pump(reader, stream, sync_rx));
        LogPump { sync_tx }
    }

    /// Waits until everything written to the pipe before this call is in the
    /// stream (a runtime writes its logs before it posts its response).
    pub async fn sync(&self) {
        let (tx, rx) = oneshot::channel();
        if self.sync_tx.send(tx).is_ok() {
            let _ = rx.await;
        }
    }
}

async fn pump(
    reader: pipe::Receiver,
    stream: Arc<LogStream>,
    mut sync_rx: mpsc::UnboundedReceiver<oneshot::Sender<()>>,
) {
    let mut pending = Vec::new();
    let mut open = true;
    loop {
        tokio::select! {
            ready = reader.readable(), if open => {
                if ready.is_err() || !drain(&reader, &mut pending, &stream) {
                    open = false;
                    flush_partial(&mut pending, &stream);
                }
            }
            ack = sync_rx.recv() => {
                let Some(ack) = ack else { break };
                if open && !drain(&reader, &mut pending, &stream) {
                    open = false;
                }
                flush_partial(&mut pending, &stream);
                let _ = ack.send(());
            }
        }
    }
}

/// Reads what the pipe holds now; false at end of file or on error.
fn drain(reader: &pipe::Receiver, pending: &mut Vec<u8>, stream: &LogStream) -> bool {
    let mut chunk = [0u8; 16 * 1024];
    loop {
        match reader.try_read(&mut chunk) {
            Ok(0) => return false,
            Ok(n) => {
                pending.extend_from_slice(&chunk[..n]);
                while let Some(pos) = pending.iter().position(|&b| b == b'\n') {
                    let rest = pending.split_off(pos + 1);
                    pending.pop();
                    stream.line(strip_cr(pending));
                    *pending = rest;
                }
                while pending.len() > MAX_LINE {
                    let rest = pending.split_off(MAX_LINE);
                    stream.line(pending);
                    *pending = rest;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return false,
        }
    }
}

fn strip_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

fn flush_partial(pending: &mut Vec<u8>, stream: &LogStream) {
    if !pending.is_empty() {
        stream.line(pending);
        pending.clear();
    }
}

/// The log files of a function, oldest first.
pub fn stream_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<(std::time::SystemTime, PathBuf)> = fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "log"))
        .map(|e| (e.metadata().and_then(|m| m.modified()).unwrap_or(std::time::UNIX_EPOCH), e.path()))
        .collect();
    files.sort();
    files.into_iter().map(|(_, p)| p).collect()
}
