//! floe's function benchmarks (../shared/BENCH.md, "The seed workload (functions)"):
//! cold start and warm invocation of a no-op handler in Python, Node and a
//! `provided` Rust binary, side by side with the bare interpreter's start and with
//! the same handler run by the official runtime interface client (RIC) without floe
//! (against a minimal Runtime API server in this process); an extra bind mount on a
//! cold start; throughput of concurrent warm invocations. Rounds alternate between
//! targets. Needs root (sandboxes) and the RIC fixtures (`scripts/ric-fixtures`).
//! Not a test: nothing here fails on timing.

#[path = "../refapi.rs"]
mod refapi;
#[path = "../stats.rs"]
#[allow(dead_code)]
mod stats;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Parser;
use floe_lambda::code::Package;
use floe_lambda::{Functions, InvokeRequest, MountConfig, NodeConfig, Settings};
use stats::{ms, Report, Series, Table};

#[derive(Parser)]
#[command(about = "Run floe's function benchmarks side by side with bare processes and the official RICs")]
struct Args {
    /// Where the RIC fixtures are (scripts/ric-fixtures).
    #[arg(long, env = "FLOE_RIC_DIR", default_value = "target/ric")]
    ric: PathBuf,
    /// Working directory (data of the benchmark node).
    #[arg(long, default_value = "/var/tmp/floe-fn-bench")]
    work: PathBuf,
    /// Fewer samples.
    #[arg(long)]
    quick: bool,
    #[arg(long, default_value = "target/bench/functions.json")]
    json: PathBuf,
    /// Do not freeze idle environments (to measure what freezing costs).
    #[arg(long)]
    no_freeze: bool,
    /// Only these languages (python, node, provided-rust).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// /tmp as a tmpfs instead of a loop-mounted disk (to measure what the disk costs).
    #[arg(long)]
    tmpfs: bool,
    /// Skip the cold-start tables.
    #[arg(long)]
    warm_only: bool,
}

struct Lang {
    name: &'static str,
    runtime: &'static str,
    /// floe's code directory and handler for the no-op.
    code: PathBuf,
    handler: &'static str,
    /// The bare interpreter's start (None: no interpreter).
    bare: Option<Vec<String>>,
    /// The official RIC started bare: argv and working directory.
    ric: Vec<String>,
    ric_dir: PathBuf,
    ric_env: Vec<(String, String)>,
}

fn main() {
    if let Err(e) = run(Args::parse()) {
        eprintln!("floe-fn-bench: {e:#}");
        std::process::exit(1);
    }
}

fn run(args: Args) -> Result<()> {
    let ric = std::fs::canonicalize(&args.ric)
        .with_context(|| format!("RIC fixtures at {} (run scripts/ric-fixtures)", args.ric.display()))?;
    let _ = std::fs::remove_dir_all(&args.work);
    std::fs::create_dir_all(args.work.join("objects"))?;
    let code_root = args.work.join("code");
    let mut langs = languages(&ric, &code_root)?;
    if !args.only.is_empty() {
        langs.retain(|l| args.only.iter().any(|o| o == l.name));
    }
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let (cold_n, warm_n) = if args.quick { (15, 200) } else { (60, 1000) };
    let mut report = Report::new(&format!(
        "Machine: {} cores, {} GiB; a shared, noisy VM. Cold: {cold_n} rounds per case; warm: {warm_n} invocations.",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        mem_gib()
    ));
    let mut floors = String::new();
    rt.block_on(async {
        let functions = open(&args.work, !args.no_freeze, !args.tmpfs).await?;
        let mount_dir = args.work.join("mnt");
        std::fs::create_dir_all(&mount_dir)?;
        for lang in &langs {
            let package = Package::from_dir(&lang.code, functions.limits()).map_err(|e| anyhow::anyhow!("{e}"))?;
            let s = Settings {
                runtime: Some(lang.runtime.into()),
                handler: Some(lang.handler.into()),
                ..Default::default()
            };
            functions
                .create_function(lang.name, s.clone(), package.clone())
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            let mut with_mount = s;
            with_mount.mounts = Some(vec![MountConfig {
                source: mount_dir.display().to_string(),
                local_mount_path: "/mnt/data".into(),
            }]);
            functions
                .create_function(&format!("{}-mnt", lang.name), with_mount, package)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
        }
        let mut cold = Table {
            title: "Cold start: spawn to first response, no-op handler".into(),
            unit: "ms",
            higher_is_better: false,
            show_max: true,
            lead: None,
            rows: Vec::new(),
        };
        let mut mounts = Table {
            title: "Cold start with an extra bind mount (/mnt/data)".into(),
            unit: "ms",
            higher_is_better: false,
            show_max: true,
            lead: None,
            rows: Vec::new(),
        };
        let mut warm = Table {
            title: "Warm invocation, no-op handler: invoke to result".into(),
            unit: "ms",
            higher_is_better: false,
            show_max: true,
            lead: None,
            rows: Vec::new(),
        };
        for lang in &langs {
            let (mut f, mut m, mut r, mut b) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
            for round in 0..if args.warm_only { 0 } else { cold_n + 2 } {
                // Which of the two goes first alternates, so neither always follows the other.
                let mnt = format!("{}-mnt", lang.name);
                let (fc, mc) = if round % 2 == 0 {
                    let fc = cold_floe(&functions, lang.name).await?;
                    (fc, cold_floe(&functions, &mnt).await?)
                } else {
                    let mc = cold_floe(&functions, &mnt).await?;
                    (cold_floe(&functions, lang.name).await?, mc)
                };
                let rc = cold_ric(lang)?;
                let bc = match &lang.bare {
                    Some(argv) => Some(bare(argv)?),
                    None => None,
                };
                if round >= 2 {
                    f.push(fc);
                    m.push(mc);
                    r.push(rc);
                    if let Some(bc) = bc {
                        b.push(bc);
                    }
                }
            }
            let mut row = vec![
                Series { target: "floe".into(), samples: f.clone() },
                Series { target: "RIC without floe".into(), samples: r },
            ];
            if !b.is_empty() {
                row.push(Series { target: "bare interpreter".into(), samples: b });
            }
            cold.rows.push((lang.name.to_string(), row));
            mounts.rows.push((
                lang.name.to_string(),
                vec![
                    Series { target: "floe + mount".into(), samples: m },
                    Series { target: "floe".into(), samples: f },
                ],
            ));
            let (fw, rw) = warm_pair(&functions, lang, warm_n).await?;
            warm.rows.push((
                lang.name.to_string(),
                vec![
                    Series { target: "floe".into(), samples: fw },
                    Series { target: "RIC without floe".into(), samples: rw },
                ],
            ));
        }
        floors = floor_lines(&cold, &mounts, &warm);
        report.tables.push(cold);
        report.tables.push(mounts);
        report.tables.push(warm);
        report.tables.push(throughput(&functions, &langs, if args.quick { 1 } else { 3 }).await?);
        functions.shutdown();
        anyhow::Ok(())
    })?;
    report.write_json(&args.json)?;
    println!("{}", report.markdown());
    println!("{floors}");
    Ok(())
}

fn mem_gib() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| m.lines().next().and_then(|l| l.split_whitespace().nth(1)).and_then(|k| k.parse::<u64>().ok()))
        .map(|kb| kb / 1024 / 1024)
        .unwrap_or(0)
}

async fn open(work: &Path, freeze: bool, disk_tmp: bool) -> Result<Functions> {
    let meta = floe_meta::Meta::new(floe_meta::SqliteStore::open(&work.join("meta.db"))?);
    let objects = Arc::new(object_store::local::LocalFileSystem::new_with_prefix(work.join("objects"))?);
    let mut config = NodeConfig::new(work.join("node"));
    config.invoker.account_concurrency = 100;
    config.freeze_idle = freeze;
    config.disk_tmp = disk_tmp;
    Functions::open(meta, objects, config).await.map_err(|e| anyhow::anyhow!("{e}"))
}

fn languages(ric: &Path, code_root: &Path) -> Result<Vec<Lang>> {
    let write = |dir: &Path, file: &str, content: &str| -> Result<()> {
        std::fs::create_dir_all(dir)?;
        std::fs::write(dir.join(file), content)?;
        Ok(())
    };
    let py = code_root.join("python");
    write(&py, "app.py", "def noop(event, context):\n    return None\n")?;
    let node = code_root.join("node");
    write(&node, "index.js", "exports.noop = async () => null;\n")?;
    let rust = code_root.join("rust");
    std::fs::create_dir_all(&rust)?;
    let rust_bin = ric.join("rust/bootstrap");
    if !rust_bin.is_file() {
        bail!("{} is missing (run scripts/ric-fixtures)", rust_bin.display());
    }
    std::fs::copy(&rust_bin, rust.join("bootstrap"))?;
    let node_ric = ric.join("node/node_modules/aws-lambda-ric/bin/index.mjs");
    Ok(vec![
        Lang {
            name: "python",
            runtime: "python3.11",
            code: py,
            handler: "app.noop",
            bare: Some(vec!["/usr/bin/python3".into(), "-u".into(), "-c".into(), "print(1)".into()]),
            ric: vec!["/usr/bin/python3".into(), "-m".into(), "awslambdaric".into(), "app.noop".into()],
            ric_dir: ric.join("python"),
            ric_env: vec![],
        },
        Lang {
            name: "node",
            runtime: "nodejs20.x",
            code: node,
            handler: "index.noop",
            bare: Some(vec!["/usr/bin/node".into(), "-e".into(), "process.stdout.write('1')".into()]),
            ric: vec!["/usr/bin/node".into(), node_ric.display().to_string(), "index.noop".into()],
            ric_dir: ric.join("node"),
            ric_env: vec![],
        },
        Lang {
            name: "provided-rust",
            runtime: "provided.al2023",
            code: rust,
            handler: "noop",
            bare: None,
            ric: vec![rust_bin.display().to_string()],
            ric_dir: ric.join("rust"),
            ric_env: vec![("_HANDLER".into(), "noop".into())],
        },
    ])
}

/// A cold start through floe: the function's environments are retired first, and
/// their teardown (and the refill of prepared sandboxes) is given 100 ms to finish
/// so that it does not compete with the start measured, as when a cold start
/// happens because no environment is idle.
async fn cold_floe(functions: &Functions, name: &str) -> Result<f64> {
    functions.invoker().retire_function(name);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    let r = functions.invoke(name, InvokeRequest::sync("{}")).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let elapsed = ms(started.elapsed());
    if let Some(e) = r.function_error {
        bail!("{name}: {e}: {}", String::from_utf8_lossy(&r.payload));
    }
    Ok(elapsed)
}

/// The RIC started bare against a minimal Runtime API server: spawn to first response.
fn cold_ric(lang: &Lang) -> Result<f64> {
    let api = refapi::RefApi::start()?;
    let started = Instant::now();
    let mut child = ric_command(lang, &api).spawn().with_context(|| format!("start {:?}", lang.ric))?;
    api.send(b"{}".to_vec());
    let result = api.result(Duration::from_secs(30));
    let elapsed = ms(started.elapsed());
    let _ = child.kill();
    let _ = child.wait();
    result.with_context(|| format!("{} RIC gave no response", lang.name))?;
    Ok(elapsed)
}

fn ric_command(lang: &Lang, api: &refapi::RefApi) -> Command {
    let mut c = Command::new(&lang.ric[0]);
    c.args(&lang.ric[1..])
        .current_dir(&lang.ric_dir)
        .env("AWS_LAMBDA_RUNTIME_API", api.addr.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", "bench")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_REGION", "us-east-1")
        .env("LAMBDA_TASK_ROOT", &lang.ric_dir)
        .env("_HANDLER", lang.ric.last().cloned().unwrap_or_default())
        .envs(lang.ric_env.iter().cloned())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    c
}

/// The bare interpreter's start: spawn to the first byte it writes (its exit,
/// which is slow for Node, is not part of a start).
fn bare(argv: &[String]) -> Result<f64> {
    use std::io::Read;
    let started = Instant::now();
    let mut child = Command::new(&argv[0]).args(&argv[1..]).stdout(Stdio::piped()).spawn()?;
    let mut byte = [0u8; 1];
    let mut stdout = child.stdout.take().expect("piped");
    let n = stdout.read(&mut byte)?;
    let elapsed = ms(started.elapsed());
    std::io::copy(&mut stdout, &mut std::io::sink())?;
    let status = child.wait()?;
    if n == 0 || !status.success() {
        bail!("{argv:?} failed");
    }
    Ok(elapsed)
}

/// Warm invocations through floe and through the bare RIC, alternating.
async fn warm_pair(functions: &Functions, lang: &Lang, n: usize) -> Result<(Vec<f64>, Vec<f64>)> {
    let api = refapi::RefApi::start()?;
    let mut child = ric_command(lang, &api).spawn()?;
    for _ in 0..5 {
        api.send(b"{}".to_vec());
        api.result(Duration::from_secs(30)).context("RIC warm-up")?;
        functions.invoke(lang.name, InvokeRequest::sync("{}")).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    let (mut f, mut r) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for _ in 0..n {
        let started = Instant::now();
        functions.invoke(lang.name, InvokeRequest::sync("{}")).await.map_err(|e| anyhow::anyhow!("{e}"))?;
        f.push(ms(started.elapsed()));
        let started = Instant::now();
        api.send(b"{}".to_vec());
        api.result(Duration::from_secs(30)).context("RIC warm")?;
        r.push(ms(started.elapsed()));
    }
    let _ = child.kill();
    let _ = child.wait();
    Ok((f, r))
}

/// Invocations per second with c concurrent callers on warm environments.
async fn throughput(functions: &Functions, langs: &[Lang], seconds: u64) -> Result<Table> {
    let mut table = Table {
        title: format!("Concurrent warm invocations, no-op handler ({seconds} s per case)"),
        unit: "invocations/s",
        higher_is_better: true,
        show_max: false,
        lead: None,
        rows: Vec::new(),
    };
    for lang in langs {
        for c in [1usize, 2, 4, 8] {
            let deadline = Instant::now() + Duration::from_secs(seconds);
            let tasks: Vec<_> = (0..c)
                .map(|_| {
                    let functions = functions.clone();
                    let name = lang.name;
                    tokio::spawn(async move {
                        let mut n = 0u64;
                        while Instant::now() < deadline {
                            if functions.invoke(name, InvokeRequest::sync("{}")).await.is_ok() {
                                n += 1;
                            }
                        }
                        n
                    })
                })
                .collect();
            let mut total = 0;
            for t in tasks {
                total += t.await?;
            }
            table.rows.push((
                format!("{} x{c}", lang.name),
                vec![Series { target: "floe".into(), samples: vec![total as f64 / seconds as f64] }],
            ));
        }
    }
    Ok(table)
}

/// Issue 4's floors, checked against this run's p50s: cold start ≤ reference + 15 ms
/// (the bare interpreter; for `provided`, the same binary without floe), an extra
/// bind mount ≤ +1 ms, warm invocation ≤ 1 ms over the handler (a no-op: ~0).
fn floor_lines(cold: &Table, mounts: &Table, warm: &Table) -> String {
    let p50 = |t: &Table, case: &str, target: &str| {
        t.rows
            .iter()
            .find(|(c, _)| c == case)
            .and_then(|(_, series)| series.iter().find(|s| s.target == target))
            .map(|s| s.pct(0.5))
            .unwrap_or(f64::NAN)
    };
    let verdict = |ok: bool| if ok { "met" } else { "**not met**" };
    let mut out = String::from(
        "\n### Issue 4's floors against this run (p50, ms)\n\n| case | cold: floe − reference (≤ 15) | mount: with − without (≤ 1) | warm: floe (≤ 1 over a no-op) |\n|---|---|---|---|\n",
    );
    for (case, _) in &cold.rows {
        let floe = p50(cold, case, "floe");
        let bare = p50(cold, case, "bare interpreter");
        let (reference, name) = if bare.is_nan() {
            (p50(cold, case, "RIC without floe"), "RIC without floe")
        } else {
            (bare, "bare interpreter")
        };
        let cold_delta = floe - reference;
        let mount_delta = p50(mounts, case, "floe + mount") - p50(mounts, case, "floe");
        let warm_p50 = p50(warm, case, "floe");
        out.push_str(&format!(
            "| {case} | {cold_delta:.1} (vs {name}): {} | {mount_delta:+.2}: {} | {warm_p50:.2}: {} |\n",
            verdict(cold_delta <= 15.0),
            verdict(mount_delta <= 1.0),
            verdict(warm_p50 <= 1.0),
        ));
    }
    out
}
