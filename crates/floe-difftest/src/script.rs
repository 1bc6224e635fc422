//! Replay files: a sequence of steps in their text form, one per line, after a short
//! header. `#` starts a comment line.
//!
//! ```text
//! # floe-difftest replay
//! seed 42
//! fault corrupt-write-on-a:17
//! 3 uid=0 open h=1 path=a flags=RDWR|CREAT mode=0o644
//! 17 uid=1000 pwrite h=1 off=0 len=10 fill=99
//! ```

use crate::fault::Fault;
use crate::op::Op;
use crate::op::{OpenFlags, RenameHow, Step, Time, XattrHow, ACCESS_MODE_NAMES, HANDLES, OPEN_FLAG_NAMES};
use std::collections::HashMap;
use std::path::Path;

/// A replayable sequence of steps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Script {
    /// The seed the steps were generated from (informational).
    pub seed: u64,
    /// The fault the steps ran with, if any.
    pub fault: Option<Fault>,
    pub steps: Vec<Step>,
}

impl Script {
    /// The text form.
    pub fn to_text(&self) -> String {
        let mut out = format!("# floe-difftest replay\nseed {}\n", self.seed);
        if let Some(fault) = self.fault {
            out.push_str(&format!("fault {fault}\n"));
        }
        for step in &self.steps {
            out.push_str(&format!("{step}\n"));
        }
        out
    }

    /// Parses the text form.
    pub fn parse(text: &str) -> Result<Script, String> {
        let mut script = Script { seed: 0, fault: None, steps: Vec::new() };
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            let at = |e: String| format!("line {}: {e}", n + 1);
            if line.is_empty() || line.starts_with('#') {
                continue;
            } else if let Some(seed) = line.strip_prefix("seed ") {
                script.seed = seed.trim().parse().map_err(|_| at(format!("bad seed {seed:?}")))?;
            } else if let Some(fault) = line.strip_prefix("fault ") {
                script.fault = Some(fault.trim().parse().map_err(at)?);
            } else {
                script.steps.push(parse_step(line).map_err(at)?);
            }
        }
        Ok(script)
    }

    /// Reads and parses a replay file.
    pub fn load(path: &Path) -> Result<Script, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Script::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Writes the text form to `path`.
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        std::fs::write(path, self.to_text())
    }
}

fn decode(s: &str) -> Result<String, String> {
    if s == "~" {
        return Ok(String::new());
    }
    let mut out = Vec::new();
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        if b == b'%' {
            let hex: Vec<u8> = bytes.by_ref().take(2).collect();
            let hex = std::str::from_utf8(&hex).map_err(|_| format!("bad escape in {s:?}"))?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| format!("bad escape in {s:?}"))?);
        } else {
            out.push(b);
        }
    }
    String::from_utf8(out).map_err(|_| format!("{s:?} is not UTF-8"))
}

/// Whether `p` is a path the tester may use: relative, downward only (`.` alone names the
/// run directory), so that no operation can reach outside the run directory.
pub fn is_safe_relative(p: &str) -> bool {
    p == "." || (!p.is_empty() && !p.starts_with('/') && p.split('/').all(|c| !c.is_empty() && c != "." && c != ".."))
}

struct Fields<'a> {
    map: HashMap<&'a str, &'a str>,
}

impl<'a> Fields<'a> {
    fn raw(&self, key: &str) -> Result<&'a str, String> {
        self.map.get(key).copied().ok_or_else(|| format!("missing {key}="))
    }

    fn num<T: std::str::FromStr>(&self, key: &str) -> Result<T, String> {
        let v = self.raw(key)?;
        v.parse().map_err(|_| format!("bad {key}={v}"))
    }

    fn handle(&self) -> Result<u8, String> {
        let h: u8 = self.num("h")?;
        if h < HANDLES {
            Ok(h)
        } else {
            Err(format!("handle {h} is not below {HANDLES}"))
        }
    }

    fn string(&self, key: &str) -> Result<String, String> {
        decode(self.raw(key)?)
    }

    fn path(&self, key: &str) -> Result<String, String> {
        let p = self.string(key)?;
        if is_safe_relative(&p) {
            Ok(p)
        } else {
            Err(format!("{key}={p:?} must be relative without '..' components"))
        }
    }

    fn mode(&self, key: &str) -> Result<u32, String> {
        let v = self.raw(key)?;
        let digits = v.strip_prefix("0o").ok_or_else(|| format!("{key}={v}: expected 0o..."))?;
        u32::from_str_radix(digits, 8).map_err(|_| format!("bad {key}={v}"))
    }

    fn flag(&self, key: &str) -> Result<bool, String> {
        self.num(key)
    }

    fn id(&self, key: &str) -> Result<Option<u32>, String> {
        if self.raw(key)? == "keep" {
            Ok(None)
        } else {
            self.num(key).map(Some)
        }
    }

    fn time(&self, key: &str) -> Result<Time, String> {
        match self.raw(key)? {
            "omit" => Ok(Time::Omit),
            "now" => Ok(Time::Now),
            v => {
                let (s, ns) = v.split_once(':').ok_or_else(|| format!("bad {key}={v}"))?;
                let sec = s.parse().map_err(|_| format!("bad {key}={v}"))?;
                let nsec = ns.parse().map_err(|_| format!("bad {key}={v}"))?;
                Ok(Time::At { sec, nsec })
            }
        }
    }

    fn open_flags(&self) -> Result<OpenFlags, String> {
        let v = self.raw("flags")?;
        let mut parts = v.split('|');
        let acc = parts.next().unwrap_or_default();
        let mut flags =
            ACCESS_MODE_NAMES.iter().find(|(_, n)| *n == acc).ok_or_else(|| format!("bad access mode {acc}"))?.0;
        for part in parts {
            flags |= OPEN_FLAG_NAMES.iter().find(|(_, n)| *n == part).ok_or_else(|| format!("bad open flag {part}"))?.0;
        }
        Ok(OpenFlags(flags))
    }
}

/// Parses one step: `INDEX uid=UID NAME key=value...`.
pub fn parse_step(line: &str) -> Result<Step, String> {
    let mut tokens = line.split_whitespace();
    let index = tokens.next().unwrap_or_default();
    let index = index.parse().map_err(|_| format!("bad step index {index:?}"))?;
    let uid = tokens.next().and_then(|t| t.strip_prefix("uid=")).ok_or("missing uid=")?;
    let uid = uid.parse().map_err(|_| format!("bad uid {uid:?}"))?;
    let name = tokens.next().ok_or("missing operation")?;
    let mut map = HashMap::new();
    for token in tokens {
        let (k, v) = token.split_once('=').ok_or_else(|| format!("expected key=value, got {token:?}"))?;
        map.insert(k, v);
    }
    let f = Fields { map };
    let op = match name {
        "open" => Op::Open { h: f.handle()?, path: f.path("path")?, flags: f.open_flags()?, mode: f.mode("mode")? },
        "close" => Op::Close { h: f.handle()? },
        "pwrite" => Op::Pwrite { h: f.handle()?, off: f.num("off")?, len: f.num("len")?, fill: f.num("fill")? },
        "write" => Op::Write { h: f.handle()?, len: f.num("len")?, fill: f.num("fill")? },
        "pread" => Op::Pread { h: f.handle()?, off: f.num("off")?, len: f.num("len")? },
        "read" => Op::Read { h: f.handle()?, len: f.num("len")? },
        "ftruncate" => Op::Ftruncate { h: f.handle()?, len: f.num("len")? },
        "truncate" => Op::Truncate { path: f.path("path")?, len: f.num("len")? },
        "fsync" => Op::Fsync { h: f.handle()? },
        "fallocate" => {
            Op::Fallocate { h: f.handle()?, punch: f.flag("punch")?, off: f.num("off")?, len: f.num("len")? }
        }
        "fstat" => Op::Fstat { h: f.handle()? },
        "stat" => Op::Stat { path: f.path("path")?, follow: f.flag("follow")? },
        "mkdir" => Op::Mkdir { path: f.path("path")?, mode: f.mode("mode")? },
        "rmdir" => Op::Rmdir { path: f.path("path")? },
        "unlink" => Op::Unlink { path: f.path("path")? },
        "rename" => {
            let how = match f.raw("how")? {
                "plain" => RenameHow::Plain,
                "noreplace" => RenameHow::NoReplace,
                "exchange" => RenameHow::Exchange,
                v => return Err(format!("bad how={v}")),
            };
            Op::Rename { from: f.path("from")?, to: f.path("to")?, how }
        }
        "link" => Op::Link { from: f.path("from")?, to: f.path("to")? },
        "symlink" => Op::Symlink { target: f.path("target")?, path: f.path("path")? },
        "readlink" => Op::Readlink { path: f.path("path")? },
        "chmod" => Op::Chmod { path: f.path("path")?, mode: f.mode("mode")? },
        "chown" => {
            Op::Chown { path: f.path("path")?, owner: f.id("owner")?, group: f.id("group")?, follow: f.flag("follow")? }
        }
        "utimens" => Op::Utimens {
            path: f.path("path")?,
            atime: f.time("atime")?,
            mtime: f.time("mtime")?,
            follow: f.flag("follow")?,
        },
        "readdir" => Op::Readdir { path: f.path("path")? },
        "setxattr" => {
            let how = match f.raw("how")? {
                "any" => XattrHow::Any,
                "create" => XattrHow::Create,
                "replace" => XattrHow::Replace,
                v => return Err(format!("bad how={v}")),
            };
            Op::Setxattr {
                path: f.path("path")?,
                name: f.string("name")?,
                len: f.num("len")?,
                fill: f.num("fill")?,
                how,
            }
        }
        "getxattr" => Op::Getxattr { path: f.path("path")?, name: f.string("name")? },
        "listxattr" => Op::Listxattr { path: f.path("path")? },
        "removexattr" => Op::Removexattr { path: f.path("path")?, name: f.string("name")? },
        "access" => Op::Access { path: f.path("path")?, mode: f.num("mode")? },
        "umask" => Op::Umask { mask: f.mode("mask")? & 0o777 },
        other => return Err(format!("unknown operation {other:?}")),
    };
    Ok(Step { index, uid, op })
}
