//! Crash safety, the long way: a client is killed with SIGKILL at a random moment while
//! an application writes through it, again and again on the same file system. After
//! every crash `floe fsck` must find the metadata consistent, and the next mount must
//! hold every byte that an fsync or close returned for.
//!
//! Iterations: `FLOE_CRASH_ITERATIONS` (default 200 under CI, 40 otherwise); the random
//! choices follow `FLOE_SEED` (printed, to replay a failure).

mod common;

use common::{assert_bytes_eq, pattern, Floe};
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const FILES: usize = 3;
/// How long an appended log may grow.
const LOG_MAX: usize = 16 << 20;
const FS: &str = "crashes";

/// What the application may rely on: state made durable by a returned fsync or close.
#[derive(Default)]
struct Durable {
    /// Per appended file: bytes an fsync returned for (its content is a prefix of the
    /// file's pattern, so its length says it all).
    synced: [usize; FILES],
    /// Files written whole, fsynced, closed and renamed into place, or unlinked: what
    /// each name may hold (`None`: absent). One state once the operation returned; two
    /// while it is in flight (it may or may not have happened when the client died).
    names: BTreeMap<String, Vec<Option<Vec<u8>>>>,
    /// Renames and unlinks with their outcomes, to explain a failure.
    history: Vec<String>,
    /// Operations that returned (fsyncs, renames, unlinks): the loop must do real work.
    durable_ops: usize,
}

fn stream(file: usize) -> u64 {
    1000 + file as u64
}

fn iterations() -> usize {
    if let Some(n) = std::env::var("FLOE_CRASH_ITERATIONS").ok().and_then(|v| v.parse().ok()) {
        return n;
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        200
    } else {
        40
    }
}

/// Checks the mount against what was made durable; returns the appended files' lengths.
fn verify(dir: &Path, durable: &mut Durable, iteration: usize) -> [usize; FILES] {
    let mut lengths = [0; FILES];
    for (i, length) in lengths.iter_mut().enumerate() {
        let path = dir.join(format!("log{i}"));
        let got = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && durable.synced[i] == 0 => Vec::new(),
            Err(e) => panic!("iteration {iteration}: reading {}: {e}", path.display()),
        };
        assert!(
            got.len() >= durable.synced[i],
            "iteration {iteration}: log{i} has {} bytes, but an fsync returned for {}",
            got.len(),
            durable.synced[i]
        );
        // Whatever is there beyond the fsynced part is what was written: never garbage.
        assert!(got.len() <= LOG_MAX, "iteration {iteration}: log{i} has {} bytes, more than was written", got.len());
        assert_bytes_eq(&got, &pattern(got.len(), stream(i)), &format!("iteration {iteration}: log{i}"));
        *length = got.len();
    }
    let mut observed = Vec::new();
    for (name, states) in &durable.names {
        let got = match fs::read(dir.join(name)) {
            Ok(b) => Some(b),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => panic!("iteration {iteration}: reading {name}: {e}"),
        };
        if !states.contains(&got) {
            let history: Vec<&String> =
                durable.history.iter().filter(|h| h.contains(name.as_str()) || h.starts_with("iter")).collect();
            panic!(
                "iteration {iteration}: {name} holds {:?} bytes, none of the {} states it may have ({:?} bytes); history: {history:#?}",
                got.as_ref().map(Vec::len),
                states.len(),
                states.iter().map(|s| s.as_ref().map(Vec::len)).collect::<Vec<_>>()
            );
        }
        observed.push((name.clone(), got));
    }
    // What is found now is what the next crash must keep.
    for (name, got) in observed {
        durable.names.insert(name, vec![got]);
    }
    lengths
}

/// The application: appends to the logs (fsyncing now and then) and replaces files
/// atomically (write, fsync, close, rename), recording what became durable, until the
/// file system goes away under it.
fn application(
    dir: PathBuf,
    lengths: [usize; FILES],
    streams: Arc<Vec<Vec<u8>>>,
    durable: Arc<Mutex<Durable>>,
    ready: std::sync::mpsc::Sender<()>,
    seed: u64,
) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut logs = Vec::new();
    for i in 0..FILES {
        match OpenOptions::new().create(true).append(true).open(dir.join(format!("log{i}"))) {
            Ok(f) => logs.push(f),
            Err(_) => return,
        }
    }
    let _ = ready.send(());
    let mut lengths = lengths;
    for op in 0u64.. {
        let result: std::io::Result<()> = match rng.random_range(0..10) {
            0..=5 => {
                let i = rng.random_range(0..FILES);
                let n = rng.random_range(1..300_000usize);
                if lengths[i] + n > streams[i].len() {
                    continue; // This log is full.
                }
                (|| {
                    logs[i].write_all(&streams[i][lengths[i]..lengths[i] + n])?;
                    lengths[i] += n;
                    if rng.random_bool(0.5) {
                        logs[i].sync_all()?;
                        let mut d = durable.lock().unwrap();
                        d.synced[i] = lengths[i];
                        d.durable_ops += 1;
                    }
                    Ok(())
                })()
            }
            6..=8 => {
                let name = format!("file{}", rng.random_range(0..4));
                let content = pattern(rng.random_range(0..200_000), seed ^ op);
                (|| {
                    let tmp = dir.join(format!("{name}.tmp"));
                    let mut f = File::create(&tmp)?;
                    f.write_all(&content)?;
                    f.sync_all()?;
                    drop(f);
                    {
                        let mut d = durable.lock().unwrap();
                        let states = d.names.entry(name.clone()).or_insert_with(|| vec![None]);
                        let old = states[0].clone();
                        *states = vec![old, Some(content.clone())];
                    }
                    let r = fs::rename(&tmp, dir.join(&name));
                    let mut d = durable.lock().unwrap();
                    d.history.push(format!("op {op}: rename {name}.tmp -> {name} ({} bytes): {r:?}", content.len()));
                    r?;
                    d.names.insert(name, vec![Some(content)]);
                    d.durable_ops += 1;
                    Ok(())
                })()
            }
            _ => {
                let name = format!("file{}", rng.random_range(0..4));
                let mut d = durable.lock().unwrap();
                match d.names.get(&name).cloned() {
                    // Only names in a known state, that exist.
                    Some(states) if states.len() == 1 && states[0].is_some() => {
                        d.names.insert(name.clone(), vec![states[0].clone(), None]);
                        drop(d);
                        let r = fs::remove_file(dir.join(&name));
                        let mut d = durable.lock().unwrap();
                        d.history.push(format!("op {op}: unlink {name}: {r:?}"));
                        r.map(|()| {
                            d.names.insert(name, vec![None]);
                            d.durable_ops += 1;
                        })
                    }
                    _ => Ok(()),
                }
            }
        };
        if result.is_err() {
            return; // The client is gone.
        }
    }
}

#[test]
fn sigkilled_clients_never_lose_fsynced_data_nor_corrupt_metadata() {
    require_fuse!();
    let seed = std::env::var("FLOE_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(rand::random::<u64>);
    let n = iterations();
    eprintln!("crash loop: {n} iterations, FLOE_SEED={seed}");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let floe = Floe::new();
    floe.create(FS);
    let dir = tempfile::Builder::new().prefix("floe-e2e-crash-").tempdir().expect("mount point");
    let durable = Arc::new(Mutex::new(Durable::default()));
    let streams: Arc<Vec<Vec<u8>>> = Arc::new((0..FILES).map(|i| pattern(LOG_MAX, stream(i))).collect());
    for iteration in 0..n {
        let m = floe.mount_at(FS, dir.path(), &[]);
        durable.lock().unwrap().history.push(format!("iteration {iteration}"));
        let lengths = verify(m.path(), &mut durable.lock().unwrap(), iteration);
        // The application reaches the mount through a descriptor of its root, never by
        // its path: once the dead mount is detached, the path leads to the directory
        // under it, and writes there would be taken for writes to floe.
        let root = File::open(m.path()).expect("open the mount's root");
        let (ready_tx, ready) = std::sync::mpsc::channel();
        let app = {
            let path = PathBuf::from(format!("/proc/self/fd/{}", root.as_raw_fd()));
            let (durable, streams, s) = (Arc::clone(&durable), Arc::clone(&streams), rng.random());
            std::thread::spawn(move || application(path, lengths, streams, durable, ready_tx, s))
        };
        let _ = ready.recv();
        // The moment of the crash is the random choice under test.
        std::thread::sleep(Duration::from_millis(rng.random_range(0..100)));
        m.crash();
        app.join().expect("the application thread");
        drop(root);
        let run = floe.run(if iteration % 10 == 9 { vec!["fsck", FS, "--repair"] } else { vec!["fsck", FS] });
        assert!(run.ok(), "iteration {iteration} (FLOE_SEED={seed}): fsck after a crash: {run:#?}");
        for line in ["bad entries:      0", "wrong link counts: 0", "unreachable:      0", "wrong refcounts:  0"] {
            assert!(run.stdout.contains(line), "iteration {iteration} (FLOE_SEED={seed}): {run:#?}");
        }
    }
    let m = floe.mount_at(FS, dir.path(), &[]);
    let mut d = durable.lock().unwrap();
    verify(m.path(), &mut d, n);
    eprintln!("crash loop: {} fsyncs, renames and unlinks returned before the crashes", d.durable_ops);
    assert!(d.durable_ops >= n, "the application hardly ran between crashes: {} durable operations", d.durable_ops);
    drop(d);
    m.unmount();
    let run = floe.run(["fsck", FS, "--repair"]);
    assert!(run.ok(), "{run:#?}");
    let run = floe.run(["fsck", FS]);
    assert!(run.ok() && run.stdout.contains("orphan objects:   0"), "clean after the last repair: {run:#?}");
}
