//! The node's benchmarks (issue 5; ../shared/BENCH.md): `floe up` started as a user
//! starts it, then
//! - warm invocation latency of a no-op Python function through the Lambda API
//!   (SigV4-signed `Invoke`) and through an HTTP trigger, side by side with a bare
//!   loopback HTTP round trip (a server in this process answering at once);
//! - cold start (new environment through first response, client-observed) of a
//!   no-op Python function with and without an access point mounted, alternated;
//! - the seed file system table run inside a function, through its mount of the
//!   shared file system and on its own /tmp, beside the same script on the host's
//!   tmpfs (the local limit); 30-byte JSON reads and writes.
//!
//! Rounds alternate between targets. Needs root and FUSE. Not a test.

#[path = "../stats.rs"]
#[allow(dead_code)]
mod stats;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{bail, Context, Result};
use base64::Engine;
use clap::Parser;
use floe_api::sigv4::{sign, RequestToSign};
use floe_api::Credential;
use serde_json::{json, Value};
use stats::{ms, Report, Series, Table};

#[derive(Parser)]
#[command(about = "Benchmark a floe node: warm and cold invocations, and the file system from inside a function")]
struct Args {
    /// The floe binary.
    #[arg(long, default_value = "target/release/floe")]
    floe: PathBuf,
    /// Working directory (the node's data directory and HOME).
    #[arg(long, default_value = "/var/tmp/floe-up-bench")]
    work: PathBuf,
    /// Fewer samples and sizes up to 100 MiB.
    #[arg(long)]
    quick: bool,
    #[arg(long, default_value = "target/bench/up.json")]
    json: PathBuf,
}

fn main() {
    if let Err(e) = run(Args::parse()) {
        eprintln!("floe-up-bench: {e:#}");
        std::process::exit(1);
    }
}

/// One keep-alive HTTP/1.1 connection; enough for loopback measurements.
struct Conn {
    stream: BufReader<TcpStream>,
    host: String,
}

struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Conn {
    fn open(url: &str) -> Result<Conn> {
        let host = url.trim_start_matches("http://").trim_end_matches('/').to_string();
        let stream = TcpStream::connect(&host).with_context(|| format!("connect to {host}"))?;
        stream.set_nodelay(true)?;
        Ok(Conn { stream: BufReader::new(stream), host })
    }

    fn request(&mut self, method: &str, path: &str, headers: &[(String, String)], body: &[u8]) -> Result<Response> {
        let mut req = format!("{method} {path} HTTP/1.1\r\nhost: {}\r\ncontent-length: {}\r\n", self.host, body.len());
        for (n, v) in headers {
            req.push_str(&format!("{n}: {v}\r\n"));
        }
        req.push_str("\r\n");
        let mut bytes = req.into_bytes();
        bytes.extend_from_slice(body);
        self.stream.get_mut().write_all(&bytes)?;
        let mut line = String::new();
        self.stream.read_line(&mut line)?;
        let status: u16 = line.split_whitespace().nth(1).and_then(|s| s.parse().ok()).context("status line")?;
        let mut headers = Vec::new();
        let mut length = 0usize;
        loop {
            line.clear();
            self.stream.read_line(&mut line)?;
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((n, v)) = l.split_once(':') {
                let (n, v) = (n.trim().to_ascii_lowercase(), v.trim().to_string());
                if n == "content-length" {
                    length = v.parse().unwrap_or(0);
                }
                headers.push((n, v));
            }
        }
        let mut body = vec![0; length];
        self.stream.read_exact(&mut body)?;
        Ok(Response { status, headers, body })
    }
}

/// A signed client of the node's API.
struct Api {
    conn: Conn,
    key: Credential,
    region: String,
}

impl Api {
    fn call(
        &mut self,
        service: &str,
        method: &str,
        path: &str,
        extra: &[(&str, &str)],
        body: &[u8],
    ) -> Result<Response> {
        let mut headers: Vec<(String, String)> = vec![("host".into(), self.conn.host.clone())];
        headers.extend(extra.iter().map(|(n, v)| (n.to_string(), v.to_string())));
        let signed = sign(
            &self.key,
            &self.region,
            service,
            &RequestToSign { method, path_and_query: path, headers: &headers, body },
            SystemTime::now(),
        );
        let mut all: Vec<(String, String)> = headers.into_iter().filter(|(n, _)| n != "host").collect();
        all.extend(signed);
        self.conn.request(method, path, &all, body)
    }

    fn json(&mut self, service: &str, method: &str, path: &str, body: Value) -> Result<Value> {
        let text = body.to_string();
        let r = self.call(service, method, path, &[("content-type", "application/json")], text.as_bytes())?;
        if r.status >= 300 {
            bail!("{method} {path}: {} {}", r.status, String::from_utf8_lossy(&r.body));
        }
        Ok(if r.body.is_empty() { Value::Null } else { serde_json::from_slice(&r.body)? })
    }

    fn invoke(&mut self, function: &str, payload: &[u8]) -> Result<Response> {
        let r = self.call("lambda", "POST", &format!("/2015-03-31/functions/{function}/invocations"), &[], payload)?;
        if r.status != 200 || r.headers.iter().any(|(n, _)| n == "x-amz-function-error") {
            bail!("invoke {function}: {} {}", r.status, String::from_utf8_lossy(&r.body));
        }
        Ok(r)
    }
}

struct Node {
    child: Child,
    endpoint: String,
    triggers: String,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.child.id() as i32), nix::sys::signal::SIGTERM);
        let _ = self.child.wait();
    }
}

fn start_node(floe: &Path, work: &Path) -> Result<Node> {
    let mut child = Command::new(floe)
        .arg("--data-dir")
        .arg(work.join("data"))
        .args(["up", "--listen", "127.0.0.1:0", "--trigger-listen", "127.0.0.1:0"])
        .env("HOME", work.join("home"))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("start {}", floe.display()))?;
    let mut banner = String::new();
    let mut lines = BufReader::new(child.stdout.take().context("stdout")?).lines();
    for line in lines.by_ref() {
        let line = line?;
        banner.push_str(&line);
        banner.push('\n');
        if line.starts_with("stop with") {
            break;
        }
    }
    std::thread::spawn(move || lines.for_each(drop));
    let value = |label: &str| {
        banner
            .lines()
            .find_map(|l| l.trim_start().strip_prefix(label))
            .and_then(|r| r.split_whitespace().next())
            .map(str::to_string)
            .with_context(|| format!("no {label} line in the banner:\n{banner}"))
    };
    Ok(Node { endpoint: value("API")?, triggers: value("triggers")?, child })
}

fn read_key(data: &Path) -> Result<Credential> {
    let text = std::fs::read_to_string(data.join("credentials")).context("the node's credentials")?;
    let get = |k: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(k).and_then(|r| r.trim_start().strip_prefix('=')))
            .map(|v| v.trim().to_string())
            .with_context(|| format!("{k} in the credentials"))
    };
    Ok(Credential { access_key_id: get("aws_access_key_id")?, secret_access_key: get("aws_secret_access_key")? })
}

/// A zip of `files`, base64, for `Code.ZipFile`.
fn zip_b64(files: &[(&str, &str)]) -> Result<String> {
    let mut buf = std::io::Cursor::new(Vec::new());
    {
        let mut zip = zip::ZipWriter::new(&mut buf);
        for (name, content) in files {
            zip.start_file(*name, zip::write::SimpleFileOptions::default().unix_permissions(0o644))?;
            zip.write_all(content.as_bytes())?;
        }
        zip.finish()?;
    }
    Ok(base64::engine::general_purpose::STANDARD.encode(buf.into_inner()))
}

const NOOP: &str = "def handler(event, context):\n    return None\n";

/// A bare HTTP server on loopback: answers every request at once, keep-alive.
fn bare_server() -> Result<String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let _ = stream.set_nodelay(true);
                let mut reader = BufReader::new(stream);
                let mut line = String::new();
                loop {
                    let mut length = 0usize;
                    loop {
                        line.clear();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        let l = line.trim_end().to_ascii_lowercase();
                        if l.is_empty() {
                            break;
                        }
                        if let Some(v) = l.strip_prefix("content-length:") {
                            length = v.trim().parse().unwrap_or(0);
                        }
                    }
                    let mut body = vec![0; length];
                    if reader.read_exact(&mut body).is_err() {
                        return;
                    }
                    let reply = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 4\r\n\r\nnull";
                    if reader.get_mut().write_all(reply).is_err() {
                        return;
                    }
                }
            });
        }
    });
    Ok(format!("http://{addr}"))
}

fn run(args: Args) -> Result<()> {
    let _ = std::fs::remove_dir_all(&args.work);
    std::fs::create_dir_all(args.work.join("home"))?;
    let floe =
        std::fs::canonicalize(&args.floe).with_context(|| format!("{} (build it first)", args.floe.display()))?;
    let node = start_node(&floe, &args.work)?;
    let key = read_key(&args.work.join("data"))?;
    let mut api = Api { conn: Conn::open(&node.endpoint)?, key, region: "us-east-1".into() };
    eprintln!("node up at {} (triggers {})", node.endpoint, node.triggers);

    // The file system, its access point, and the functions.
    let fs = api.json("elasticfilesystem", "POST", "/2015-02-01/file-systems", json!({"CreationToken": "bench"}))?;
    let fs_id = fs["FileSystemId"].as_str().context("FileSystemId")?.to_string();
    let ap = api.json(
        "elasticfilesystem",
        "POST",
        "/2015-02-01/access-points",
        json!({"ClientToken": "bench-ap", "FileSystemId": fs_id, "PosixUser": {"Uid": 1000, "Gid": 1000},
               "RootDirectory": {"Path": "/bench", "CreationInfo": {"OwnerUid": 1000, "OwnerGid": 1000, "Permissions": "755"}}}),
    )?;
    let ap_arn = ap["AccessPointArn"].as_str().context("AccessPointArn")?.to_string();
    let mount = json!([{"Arn": ap_arn, "LocalMountPath": "/mnt/bench"}]);
    let create = |api: &mut Api, name: &str, code: &str, extra: Value| -> Result<()> {
        let mut body = json!({"FunctionName": name, "Runtime": "python3.11", "Role": "arn:aws:iam::000000000000:role/bench",
                              "Handler": "app.handler", "Code": {"ZipFile": zip_b64(&[("app.py", code)])?}});
        if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
            b.extend(e.clone());
        }
        api.json("lambda", "POST", "/2015-03-31/functions", body).map(drop)
    };
    create(&mut api, "noop", NOOP, json!({}))?;
    create(&mut api, "noop-mnt", NOOP, json!({"FileSystemConfigs": mount}))?;
    create(
        &mut api,
        "fsbench",
        include_str!("../fs_in_function.py"),
        json!({"FileSystemConfigs": mount, "MemorySize": 2048, "Timeout": 900, "EphemeralStorage": {"Size": 2048}}),
    )?;
    let arn = "arn:aws:lambda:us-east-1:000000000000:function:noop";
    api.json("apigateway", "POST", "/v2/apis", json!({"name": "bench", "protocolType": "HTTP", "target": arn}))?;

    let machine = format!(
        "Machine: {} cores, {} MiB; floe up on the embedded defaults (SQLite, local objects); samples in ms.",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        memory_mib()
    );
    let mut report = Report::new(&machine);
    report.tables.push(warm(&mut api, &node, args.quick)?);
    report.tables.push(cold(&mut api, args.quick)?);
    report.tables.extend(filesystem(&mut api, args.quick)?);
    print!("{}", report.markdown());
    report.write_json(&args.json)?;
    drop(node);
    Ok(())
}

fn memory_mib() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| m.lines().next().and_then(|l| l.split_whitespace().nth(1)).and_then(|v| v.parse::<u64>().ok()))
        .map_or(0, |kib| kib / 1024)
}

fn warm(api: &mut Api, node: &Node, quick: bool) -> Result<Table> {
    let n = if quick { 200 } else { 1000 };
    let bare_url = bare_server()?;
    let mut bare = Conn::open(&bare_url)?;
    let mut trigger = Conn::open(&node.triggers)?;
    // Warm both paths first.
    for _ in 0..20 {
        api.invoke("noop", b"{}")?;
        trigger.request("GET", "/", &[], b"")?;
    }
    let (mut via_api, mut via_trigger, mut via_bare) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..n {
        let order: [u8; 3] = if i % 2 == 0 { [0, 1, 2] } else { [2, 1, 0] };
        for which in order {
            let t = Instant::now();
            match which {
                0 => {
                    api.invoke("noop", b"{}")?;
                    via_api.push(ms(t.elapsed()));
                }
                1 => {
                    let r = trigger.request("GET", "/", &[], b"")?;
                    if r.status != 200 {
                        bail!("trigger: {} {}", r.status, String::from_utf8_lossy(&r.body));
                    }
                    via_trigger.push(ms(t.elapsed()));
                }
                _ => {
                    bare.request("GET", "/", &[], b"")?;
                    via_bare.push(ms(t.elapsed()));
                }
            }
        }
    }
    Ok(Table {
        title: "Warm invocation of a no-op Python function, client-observed".into(),
        unit: "ms",
        higher_is_better: false,
        show_max: true,
        lead: None,
        rows: vec![
            (
                "Lambda Invoke (SigV4) vs bare loopback HTTP".into(),
                vec![
                    Series { target: "Invoke".into(), samples: via_api },
                    Series { target: "bare HTTP".into(), samples: via_bare.clone() },
                ],
            ),
            (
                "HTTP trigger (payload 2.0) vs bare loopback HTTP".into(),
                vec![
                    Series { target: "trigger".into(), samples: via_trigger },
                    Series { target: "bare HTTP".into(), samples: via_bare },
                ],
            ),
        ],
    })
}

/// Each sample: a configuration change (which retires the function's
/// environments), then the first invocation, timed.
fn cold(api: &mut Api, quick: bool) -> Result<Table> {
    let n = if quick { 10 } else { 40 };
    let (mut plain, mut mounted) = (Vec::new(), Vec::new());
    for i in 0..n {
        let order = if i % 2 == 0 { ["noop", "noop-mnt"] } else { ["noop-mnt", "noop"] };
        for name in order {
            api.json(
                "lambda",
                "PUT",
                &format!("/2015-03-31/functions/{name}/configuration"),
                json!({"Environment": {"Variables": {"ROUND": i.to_string()}}}),
            )?;
            // Let the retired environment's teardown finish before timing.
            std::thread::sleep(Duration::from_millis(100));
            let t = Instant::now();
            api.invoke(name, b"{}")?;
            let d = ms(t.elapsed());
            if name == "noop" {
                plain.push(d)
            } else {
                mounted.push(d)
            }
        }
    }
    Ok(Table {
        title: "Cold start of a no-op Python function (update, then first Invoke), client-observed".into(),
        unit: "ms",
        higher_is_better: false,
        show_max: true,
        lead: None,
        rows: vec![(
            "with an access point mounted vs without".into(),
            vec![
                Series { target: "mounted".into(), samples: mounted },
                Series { target: "no mount".into(), samples: plain },
            ],
        )],
    })
}

fn filesystem(api: &mut Api, quick: bool) -> Result<Vec<Table>> {
    let rounds: Vec<u32> = if quick { vec![20, 20, 10, 5, 3] } else { vec![50, 50, 20, 10, 5, 3] };
    let max_size: u64 = if quick { 100 << 20 } else { 400 << 20 };
    let json_rounds = if quick { 200 } else { 1000 };
    let event =
        json!({"dirs": ["/mnt/bench", "/tmp"], "rounds": rounds, "max_size": max_size, "json_rounds": json_rounds});
    let r = api.invoke("fsbench", event.to_string().as_bytes())?;
    let inside: Value = serde_json::from_slice(&r.body)?;
    // The same script on the host's tmpfs, with the same interpreter.
    let shm = tempfile::Builder::new().prefix("floe-up-bench-").tempdir_in("/dev/shm")?;
    let host_event = json!({"dirs": [shm.path()], "rounds": rounds, "max_size": max_size, "json_rounds": json_rounds});
    let script = format!(
        "import json, sys\n{}\nprint(json.dumps(handler(json.loads(sys.argv[1]), None)))\n",
        include_str!("../fs_in_function.py")
    );
    let out = Command::new("/usr/bin/python3").arg("-c").arg(script).arg(host_event.to_string()).output()?;
    if !out.status.success() {
        bail!("host run: {}", String::from_utf8_lossy(&out.stderr));
    }
    let host: Value = serde_json::from_slice(&out.stdout)?;
    let shm_key = shm.path().display().to_string();
    let samples = |v: &Value| -> Vec<f64> {
        v.as_array().map(|a| a.iter().filter_map(Value::as_f64).collect()).unwrap_or_default()
    };
    let three = |mnt: &Value, tmp: &Value, host: &Value| {
        vec![
            Series { target: "mount".into(), samples: samples(mnt) },
            Series { target: "fn /tmp".into(), samples: samples(tmp) },
            Series { target: "host tmpfs".into(), samples: samples(host) },
        ]
    };
    let mut rows = Vec::new();
    if let Some(sizes) = inside["sizes"].as_object() {
        let mut sizes: Vec<(&String, &Value)> = sizes.iter().collect();
        sizes.sort_by_key(|(k, _)| k.parse::<u64>().unwrap_or(0));
        for (size, s) in sizes {
            let bytes: u64 = size.parse().unwrap_or(0);
            let label = if bytes >= 1 << 20 { format!("{} MiB", bytes >> 20) } else { format!("{} KiB", bytes >> 10) };
            rows.push((label, three(&s["/mnt/bench"], &s["/tmp"], &host["sizes"][size.as_str()][&shm_key])));
        }
    }
    let small = vec![
        (
            "read".to_string(),
            three(&inside["json_read"]["/mnt/bench"], &inside["json_read"]["/tmp"], &host["json_read"][&shm_key]),
        ),
        (
            "write".to_string(),
            three(&inside["json_write"]["/mnt/bench"], &inside["json_write"]["/tmp"], &host["json_write"][&shm_key]),
        ),
    ];
    Ok(vec![
        Table {
            title: "Read a file and write it back as a new file, inside a function".into(),
            unit: "ms",
            higher_is_better: false,
            show_max: false,
            lead: None,
            rows,
        },
        Table {
            title: "30-byte JSON file inside a function (EFS from Lambda: read 8 ms, write 30 ms)".into(),
            unit: "ms",
            higher_is_better: false,
            show_max: true,
            lead: None,
            rows: small,
        },
    ])
}
