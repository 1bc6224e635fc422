//! Comparing two whole trees: names, types, modes, sizes, link counts, owners, symlink
//! targets, which names are hard links of each other, `user.` xattrs and file contents.

use crate::outcome::{show_bytes, Meta};
use crate::sys::{self, errno_name, SysResult};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::os::fd::AsFd;
use std::path::Path;

/// How many differences one report lists.
const MAX_REPORTED: usize = 12;
/// How much file data is compared per read.
const CHUNK: u64 = 1 << 20;

/// A file's identity on one side: (device, inode). Never compared across sides.
pub type Ino = (u64, u64);

/// Which file contents a tree comparison reads.
#[derive(Clone, Copy, Debug)]
pub enum Contents<'a> {
    /// Only files whose inode is in either set (those written or truncated since the
    /// last comparison), skipping holes that both sides report.
    Touched { a: &'a HashSet<Ino>, b: &'a HashSet<Ino> },
    /// Every file, skipping holes that both sides report with `SEEK_DATA`/`SEEK_HOLE`
    /// (a file system without those reports the whole file as data: merely slower).
    All,
    /// Every byte of every file.
    Full,
}

/// What a tree comparison looks at.
#[derive(Clone, Copy, Debug)]
pub struct TreeOpts<'a> {
    /// Compare `user.` xattrs.
    pub xattrs: bool,
    pub contents: Contents<'a>,
}

type Xattrs = SysResult<Vec<(Vec<u8>, SysResult<Vec<u8>>)>>;

#[derive(Debug, PartialEq, Eq)]
struct Node {
    meta: SysResult<Meta>,
    target: Option<SysResult<Vec<u8>>>,
    listing: Option<SysResult<()>>,
    xattrs: Option<Xattrs>,
    /// The first path (in walk order) of the same inode, so hard links are compared as
    /// a partition of names without comparing inode numbers.
    same_as: Option<String>,
}

fn join(rel: &str, name: &str) -> String {
    if rel == "." {
        name.to_string()
    } else {
        format!("{rel}/{name}")
    }
}

fn xattrs(p: &Path) -> Xattrs {
    let names = sys::listxattr(p, false)?;
    Ok(names
        .into_iter()
        .filter(|n| n.starts_with(b"user."))
        .map(|n| {
            let v = sys::getxattr(p, &n, false);
            (n, v)
        })
        .collect())
}

/// One side's tree: the comparable nodes, and each path's inode.
#[derive(Default)]
struct Snapshot {
    nodes: BTreeMap<String, Node>,
    inos: HashMap<String, Ino>,
    first_path: HashMap<Ino, String>,
}

fn walk(root: &Path, rel: &str, xattrs_too: bool, snap: &mut Snapshot) {
    let p = if rel == "." { root.to_path_buf() } else { root.join(rel) };
    let st = sys::stat(&p, false);
    let meta = st.as_ref().map(Meta::from_stat).map_err(|e| *e);
    let kind = meta.as_ref().map_or('?', |m| m.kind);
    let mut same_as = None;
    if let Ok(st) = &st {
        let ino = (st.st_dev, st.st_ino);
        snap.inos.insert(rel.to_string(), ino);
        if kind != 'd' {
            same_as = Some(snap.first_path.entry(ino).or_insert_with(|| rel.to_string()).clone());
        }
    }
    let target = (kind == 'l').then(|| sys::readlink(&p));
    let xattrs = (xattrs_too && (kind == 'f' || kind == 'd')).then(|| xattrs(&p));
    let mut children = Vec::new();
    let listing = (kind == 'd').then(|| {
        sys::list_dir(&p).map(|names| {
            children = names;
        })
    });
    snap.nodes.insert(rel.to_string(), Node { meta, target, listing, xattrs, same_as });
    for name in children {
        walk(root, &join(rel, &String::from_utf8_lossy(&name)), xattrs_too, snap);
    }
}

fn snapshot(root: &Path, xattrs: bool) -> Snapshot {
    let mut snap = Snapshot::default();
    walk(root, ".", xattrs, &mut snap);
    snap
}

/// The byte ranges of a file that may hold data; on any error the whole file.
fn data_ranges(fd: std::os::fd::BorrowedFd<'_>, size: u64) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < size {
        let start = match sys::lseek(fd, pos, libc::SEEK_DATA) {
            Ok(s) => s,
            Err(libc::ENXIO) => break,
            Err(_) => return vec![(0, size)],
        };
        let end = match sys::lseek(fd, start, libc::SEEK_HOLE) {
            Ok(e) if e > start => e.min(size),
            _ => return vec![(0, size)],
        };
        if start >= size {
            break;
        }
        out.push((start, end));
        pos = end;
    }
    out
}

/// The union of two sorted lists of ranges.
fn union(mut ranges: Vec<(u64, u64)>, other: Vec<(u64, u64)>) -> Vec<(u64, u64)> {
    ranges.extend(other);
    ranges.sort_unstable();
    let mut out: Vec<(u64, u64)> = Vec::new();
    for (s, e) in ranges {
        match out.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => out.push((s, e)),
        }
    }
    out
}

/// Read buffers for comparing contents, kept across comparisons.
#[derive(Default)]
pub struct Buffers {
    a: Vec<u8>,
    b: Vec<u8>,
}

/// Compares the contents of two files of `size` bytes.
fn compare_contents(a: &Path, b: &Path, size: u64, full: bool, bufs: &mut Buffers) -> Result<(), String> {
    let flags = libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK;
    let (fa, fb) = match (sys::open(a, flags, 0), sys::open(b, flags, 0)) {
        (Ok(fa), Ok(fb)) => (fa, fb),
        (Err(x), Err(y)) if x == y => return Ok(()),
        (x, y) => {
            let show = |r: &SysResult<_>| r.as_ref().map_or_else(|e| errno_name(*e), |_| "ok".to_string());
            return Err(format!("opening to compare contents: A {}, B {}", show(&x), show(&y)));
        }
    };
    let ranges =
        if full { vec![(0, size)] } else { union(data_ranges(fa.as_fd(), size), data_ranges(fb.as_fd(), size)) };
    let chunk = size.min(CHUNK) as usize;
    for buf in [&mut bufs.a, &mut bufs.b] {
        if buf.len() < chunk {
            buf.resize(chunk, 0);
        }
    }
    let (bx, by) = (&mut bufs.a, &mut bufs.b);
    for (start, end) in ranges {
        let mut pos = start;
        while pos < end {
            let len = (end - pos).min(CHUNK) as usize;
            let x = sys::pread_into(fa.as_fd(), &mut bx[..len], pos).map(|n| &bx[..n]);
            let y = sys::pread_into(fb.as_fd(), &mut by[..len], pos).map(|n| &by[..n]);
            match (&x, &y) {
                (Ok(x), Ok(y)) if x == y => {
                    if x.is_empty() {
                        break;
                    }
                    pos += x.len() as u64;
                }
                (Ok(x), Ok(y)) => {
                    let i = x.iter().zip(y.iter()).position(|(p, q)| p != q).unwrap_or(x.len().min(y.len()));
                    return Err(format!(
                        "contents differ at byte {}: A {}, B {}",
                        pos + i as u64,
                        show_bytes(&x[i.min(x.len())..]),
                        show_bytes(&y[i.min(y.len())..])
                    ));
                }
                (Err(x), Err(y)) if x == y => break,
                _ => return Err(format!("reading at byte {pos}: A {x:?}, B {y:?}")),
            }
        }
    }
    Ok(())
}

fn show_node(n: &Node) -> String {
    let mut s = match &n.meta {
        Ok(m) => m.to_string(),
        Err(e) => format!("lstat: {}", errno_name(*e)),
    };
    if let Some(t) = &n.target {
        s.push_str(&format!(" -> {:?}", t.as_ref().map(|t| String::from_utf8_lossy(t).into_owned())));
    }
    if let Some(Err(e)) = &n.listing {
        s.push_str(&format!(" (listing: {})", errno_name(*e)));
    }
    if let Some(x) = &n.xattrs {
        match x {
            Ok(list) if list.is_empty() => {}
            Ok(list) => {
                let shown: Vec<String> = list
                    .iter()
                    .map(|(k, v)| {
                        let v = v.as_ref().map_or_else(|e| errno_name(*e), |v| show_bytes(v));
                        format!("{}={v}", String::from_utf8_lossy(k))
                    })
                    .collect();
                s.push_str(&format!(" xattrs [{}]", shown.join(", ")));
            }
            Err(e) => s.push_str(&format!(" (listxattr: {})", errno_name(*e))),
        }
    }
    if let Some(first) = &n.same_as {
        s.push_str(&format!(" (same file as {first})"));
    }
    s
}

/// Compares the trees under `a` and `b`; the error lists the differences.
pub fn compare_trees(a: &Path, b: &Path, opts: TreeOpts<'_>, bufs: &mut Buffers) -> Result<(), String> {
    let (sa, sb) = (snapshot(a, opts.xattrs), snapshot(b, opts.xattrs));
    let (ta, tb) = (&sa.nodes, &sb.nodes);
    let mut diffs = Vec::new();
    for (path, na) in ta {
        match tb.get(path) {
            None => diffs.push(format!("only in A: {path} ({})", show_node(na))),
            Some(nb) if na != nb => diffs.push(format!("{path}:\n    A: {}\n    B: {}", show_node(na), show_node(nb))),
            Some(_) => {}
        }
    }
    for (path, nb) in tb {
        if !ta.contains_key(path) {
            diffs.push(format!("only in B: {path} ({})", show_node(nb)));
        }
    }
    if diffs.is_empty() {
        for (path, na) in ta {
            let Ok(Meta { kind: 'f', size: Some(size), .. }) = na.meta else { continue };
            let wanted = match opts.contents {
                Contents::Touched { a: ta, b: tb } => {
                    sa.inos.get(path).is_some_and(|i| ta.contains(i))
                        || sb.inos.get(path).is_some_and(|i| tb.contains(i))
                }
                Contents::All | Contents::Full => true,
            };
            if !wanted {
                continue;
            }
            let (pa, pb) = (a.join(path), b.join(path));
            if let Err(e) = compare_contents(&pa, &pb, size, matches!(opts.contents, Contents::Full), bufs) {
                diffs.push(format!("{path}: {e}"));
            }
        }
    }
    if diffs.is_empty() {
        return Ok(());
    }
    let more = diffs.len().saturating_sub(MAX_REPORTED);
    diffs.truncate(MAX_REPORTED);
    if more > 0 {
        diffs.push(format!("... and {more} more"));
    }
    Err(format!("trees differ:\n  {}", diffs.join("\n  ")))
}
