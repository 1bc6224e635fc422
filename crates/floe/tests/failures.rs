//! Failures a user may meet: block objects lost from storage, and a mount server
//! killed in the middle of writing.

mod common;

use common::{assert_bytes_eq, pattern, Floe};
use rand::{RngCore, SeedableRng};
use std::fs::{self, OpenOptions};
use std::io::{Read, Write};
use std::path::Path;

fn files_under(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in fs::read_dir(dir).expect("read_dir") {
        let e = e.expect("dir entry");
        if e.file_type().expect("file type").is_dir() {
            files_under(&e.path(), out);
        } else {
            out.push(e.path());
        }
    }
}

/// The count on fsck's `missing objects:` line.
fn missing_count(stdout: &str) -> usize {
    let line = stdout.lines().find(|l| l.starts_with("missing objects:")).expect("a `missing objects:` line");
    line["missing objects:".len()..].trim().parse().expect("a count")
}

#[test]
fn missing_objects_read_as_eio() {
    require_fuse!();
    let floe = Floe::new();
    let mut m = floe.create_and_mount("lossy");
    let mut data = vec![0u8; 1 << 20];
    rand::rngs::StdRng::seed_from_u64(42).fill_bytes(&mut data);
    fs::write(m.join("random"), &data).expect("write 1 MiB");
    fs::write(m.join("small"), b"stored inline in the metadata").expect("write a small file");
    let dir = m.keep_dir().expect("temporary mount point");
    m.unmount();

    let mut objects = Vec::new();
    files_under(&floe.data_dir().join("objects"), &mut objects);
    assert!(!objects.is_empty(), "a 1 MiB file is stored as objects");
    for o in &objects {
        fs::remove_file(o).expect("delete an object");
    }

    let m = floe.mount_at("lossy", dir.path(), &["--cache-size", "0"]);
    assert_eq!(fs::metadata(m.join("random")).expect("stat").len(), 1 << 20, "metadata is intact");
    let err = fs::read(m.join("random")).expect_err("reading a file whose objects are gone");
    assert_eq!(err.raw_os_error(), Some(libc::EIO), "{err}");
    let mut f = fs::File::open(m.join("random")).expect("open");
    let mut buf = [0u8; 100];
    let err = f.read(&mut buf).expect_err("read");
    assert_eq!(err.raw_os_error(), Some(libc::EIO), "{err}");
    drop(f);
    // The server is still up and serving.
    assert!(fs::metadata(m.path()).expect("stat the root").is_dir());
    assert_eq!(fs::read(m.join("small")).expect("read the inline file"), b"stored inline in the metadata");
    fs::write(m.join("new"), pattern(2 << 20, 1)).expect("write a new file");
    assert_bytes_eq(&fs::read(m.join("new")).expect("read the new file"), &pattern(2 << 20, 1), "new file");
    assert!(common::is_mount_point(m.path()));
    assert!(!common::process_gone(m.pid()), "the server is still running");
    m.unmount();
    assert!(!floe.log("lossy").contains("panicked"), "the server panicked:\n{}", floe.log("lossy"));

    let run = floe.run(["fsck", "lossy"]);
    assert_eq!(run.code, Some(1), "fsck reports lost data: {run:#?}");
    common::assert_no_panic(&run);
    assert_eq!(missing_count(&run.stdout), objects.len(), "every deleted object is reported: {run:#?}");
    assert!(run.stderr.contains("missing"), "{run:#?}");
}

#[test]
fn crash_keeps_fsynced_data() {
    require_fuse!();
    let floe = Floe::new();
    floe.create("crashy");
    let dir = tempfile::Builder::new().prefix("floe-e2e-mnt-").tempdir().expect("mount point");
    let m = floe.mount_at("crashy", dir.path(), &[]);
    let a = pattern((9 << 20) + 5, 1);
    let mut fa = fs::File::create(m.join("a")).expect("create a");
    fa.write_all(&a).expect("write a");
    fa.sync_all().expect("fsync a");
    // A small file, committed inline, and one fsynced but left open.
    fs::write(m.join("small"), b"small and closed").expect("write small");

    // Write B without fsync until several blocks have gone to object storage, then
    // kill the server with the writer still going.
    let (tx, rx) = std::sync::mpsc::channel();
    let path_b = m.join("b");
    let writer = std::thread::spawn(move || {
        let mut fb = OpenOptions::new().write(true).create(true).truncate(true).open(path_b).expect("create b");
        let chunk = pattern(1 << 20, 2);
        let mut written = 0usize;
        let result = loop {
            if let Err(e) = fb.write_all(&chunk) {
                break Err(e);
            }
            written += chunk.len();
            if written == 12 << 20 {
                tx.send(()).expect("signal the main thread");
            }
            if written >= 4 << 30 {
                break Ok(written); // A bound; the server is killed long before.
            }
        };
        drop(fb);
        result
    });
    rx.recv().expect("the writer got going");
    let pid = m.pid();
    m.crash();
    let result = writer.join().expect("writer thread");
    let err = result.expect_err("writes fail once the server is gone");
    // ECONNABORTED for a request in flight when the server died, ENOTCONN after.
    assert!(matches!(err.raw_os_error(), Some(libc::ECONNABORTED | libc::ENOTCONN)), "{err}");
    drop(fa);
    assert!(common::process_gone(pid));

    let m = floe.mount_at("crashy", dir.path(), &[]);
    assert_eq!(fs::metadata(m.join("a")).expect("stat a").len(), a.len() as u64);
    assert_bytes_eq(&fs::read(m.join("a")).expect("read a"), &a, "fsynced file after a crash");
    assert_eq!(fs::read(m.join("small")).expect("read small"), b"small and closed");
    // Whatever made it of B is a prefix of what was written: never other bytes.
    let b = fs::read(m.join("b")).expect("read b");
    let chunk = pattern(1 << 20, 2);
    for (i, piece) in b.chunks(1 << 20).enumerate() {
        assert_bytes_eq(piece, &chunk[..piece.len()], &format!("b, MiB {i}"));
    }
    m.unmount();

    let run = floe.run(["fsck", "crashy"]);
    assert!(run.ok(), "fsck after a crash: {run:#?}");
    assert_eq!(missing_count(&run.stdout), 0, "{run:#?}");
    common::assert_no_panic(&run);
    let run = floe.run(["fsck", "crashy", "--repair"]);
    assert!(run.ok(), "fsck --repair after a crash: {run:#?}");
    assert_eq!(missing_count(&run.stdout), 0, "{run:#?}");
    assert!(run.stdout.contains("repaired:"), "{run:#?}");
    // The file system is still whole after the repair.
    let m = floe.mount_at("crashy", dir.path(), &[]);
    assert_bytes_eq(&fs::read(m.join("a")).expect("read a"), &a, "fsynced file after repair");
    m.unmount();
    let run = floe.run(["fsck", "crashy"]);
    assert!(run.ok(), "fsck after the repair: {run:#?}");
}
