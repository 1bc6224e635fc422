//! One directory with 100,000 entries through a real FUSE mount: created by several
//! threads, listed exactly once each by `read_dir`, then removed.

mod common;

use common::Floe;
use std::collections::HashSet;
use std::fs;

const ENTRIES: usize = 100_000;
const THREADS: usize = 4;

fn name(i: usize) -> String {
    format!("entry-{i:06}")
}

#[test]
fn directory_with_100k_entries() {
    require_fuse!();
    let floe = Floe::new();
    let m = floe.create_and_mount("big");
    let dir = m.join("big");
    fs::create_dir(&dir).expect("mkdir");

    let t0 = std::time::Instant::now();
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let dir = &dir;
            s.spawn(move || {
                for i in (t..ENTRIES).step_by(THREADS) {
                    // Every tenth entry is a directory, the rest empty files.
                    if i % 10 == 0 {
                        fs::create_dir(dir.join(name(i))).unwrap_or_else(|e| panic!("mkdir {}: {e}", name(i)));
                    } else {
                        fs::File::create(dir.join(name(i))).unwrap_or_else(|e| panic!("create {}: {e}", name(i)));
                    }
                }
            });
        }
    });

    eprintln!("created in {:?}", t0.elapsed());
    let t0 = std::time::Instant::now();
    let mut seen = HashSet::with_capacity(ENTRIES);
    let mut dirs = 0;
    for entry in fs::read_dir(&dir).expect("opendir") {
        let entry = entry.expect("readdir");
        let n = entry.file_name().into_string().expect("utf-8 name");
        if entry.file_type().expect("file type").is_dir() {
            dirs += 1;
        }
        assert!(seen.insert(n.clone()), "{n} listed twice");
    }
    let want: HashSet<String> = (0..ENTRIES).map(name).collect();
    let missing: Vec<_> = want.difference(&seen).take(5).collect();
    let extra: Vec<_> = seen.difference(&want).take(5).collect();
    assert!(missing.is_empty() && extra.is_empty(), "missing {missing:?}, unexpected {extra:?}");
    assert_eq!(seen.len(), ENTRIES);
    assert_eq!(dirs, ENTRIES / 10);
    assert_eq!(std::os::unix::fs::MetadataExt::nlink(&fs::metadata(&dir).expect("stat")), 2 + ENTRIES as u64 / 10);

    eprintln!("listed in {:?}", t0.elapsed());
    let t0 = std::time::Instant::now();
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let dir = &dir;
            s.spawn(move || {
                for i in (t..ENTRIES).step_by(THREADS) {
                    let r = if i % 10 == 0 {
                        fs::remove_dir(dir.join(name(i)))
                    } else {
                        fs::remove_file(dir.join(name(i)))
                    };
                    r.unwrap_or_else(|e| panic!("remove {}: {e}", name(i)));
                }
            });
        }
    });
    eprintln!("removed in {:?}", t0.elapsed());
    assert_eq!(fs::read_dir(&dir).expect("opendir").count(), 0);
    fs::remove_dir(&dir).expect("rmdir the emptied directory");
}
