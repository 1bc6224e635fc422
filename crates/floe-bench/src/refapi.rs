//! A minimal Runtime API server (one event at a time, HTTP/1.1 keep-alive), for
//! running an official runtime interface client without floe around it: the
//! benchmark's reference for what the Runtime API itself costs.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub struct RefApi {
    pub addr: SocketAddr,
    events: Sender<Vec<u8>>,
    results: Receiver<Vec<u8>>,
}

impl RefApi {
    pub fn start() -> std::io::Result<RefApi> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let (events, events_rx) = channel::<Vec<u8>>();
        let (results_tx, results) = channel();
        let events_rx = Arc::new(Mutex::new(events_rx));
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let events_rx = events_rx.clone();
                let results_tx = results_tx.clone();
                std::thread::spawn(move || {
                    let _ = serve(stream, &events_rx, &results_tx);
                });
            }
        });
        Ok(RefApi { addr, events, results })
    }

    pub fn send(&self, event: Vec<u8>) {
        let _ = self.events.send(event);
    }

    pub fn result(&self, timeout: Duration) -> Option<Vec<u8>> {
        self.results.recv_timeout(timeout).ok()
    }
}

fn serve(stream: TcpStream, events: &Mutex<Receiver<Vec<u8>>>, results: &Sender<Vec<u8>>) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    let mut seq = 0u64;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let mut length = 0usize;
        loop {
            let mut header = String::new();
            reader.read_line(&mut header)?;
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((k, v)) = header.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0u8; length];
        reader.read_exact(&mut body)?;
        let response = if line.starts_with("GET") && line.contains("/invocation/next") {
            let event = events.lock().expect("events").recv().map_err(|_| std::io::ErrorKind::BrokenPipe)?;
            seq += 1;
            let deadline = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() + 300_000)
                .unwrap_or(0);
            let mut r = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nLambda-Runtime-Aws-Request-Id: req-{seq}\r\n\
                 Lambda-Runtime-Deadline-Ms: {deadline}\r\n\
                 Lambda-Runtime-Invoked-Function-Arn: arn:aws:lambda:us-east-1:000000000000:function:bench\r\n\
                 Lambda-Runtime-Trace-Id: Root=1-00000000-000000000000000000000000;Sampled=0\r\n\
                 Content-Length: {}\r\n\r\n",
                event.len()
            )
            .into_bytes();
            r.extend_from_slice(&event);
            r
        } else {
            let _ = results.send(body);
            b"HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\nContent-Length: 15\r\n\r\n{\"status\":\"OK\"}"
                .to_vec()
        };
        writer.write_all(&response)?;
    }
}
