//! The child's half: runs between fork and exec, so it may only make system
//! calls on memory prepared beforehand — no allocation, no locks. Every path is
//! turned into a `CString` by [`Plan::new`] in the parent.

use std::ffi::{CStr, CString};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{unshare, CloneFlags};
use nix::sys::stat::Mode;
use nix::unistd::{chdir, mkdir, pivot_root, setgroups, setresgid, setresuid, Gid, Uid};

use crate::spec::SandboxSpec;
use crate::SandboxError;

/// Device nodes bound from the host into the sandbox's `/dev`.
const DEVICES: [&str; 5] = ["null", "zero", "full", "random", "urandom"];

enum HostEntry {
    Dir { source: CString, target: CString },
    Symlink { link: CString, target: CString },
}

/// Every path and value the child needs, prepared in the parent.
pub(crate) struct Plan {
    cgroup_procs: Vec<CString>,
    isolate_network: bool,
    root: CString,
    root_opts: CString,
    /// Directories created on the root tmpfs, parents first: those every sandbox
    /// has, then those of this spec (mount points under /mnt, read-only binds).
    base_dirs: Vec<CString>,
    spec_dirs: Vec<CString>,
    host: Vec<HostEntry>,
    code_source: CString,
    code_target: CString,
    tmp_target: CString,
    tmp_opts: CString,
    /// A block device with an ext4 file system for `/tmp`, instead of a tmpfs.
    tmp_device: Option<CString>,
    dev_target: CString,
    devices: Vec<(CString, CString)>,
    mounts: Vec<(CString, CString)>,
    ro_binds: Vec<(CString, CString)>,
    proc_target: CString,
    uid: u32,
    gid: u32,
    cap_last: u32,
}

fn c(path: &Path) -> Result<CString, SandboxError> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| SandboxError::InvalidSpec(format!("NUL byte in {}", path.display())))
}

fn cs(s: String) -> CString {
    CString::new(s).expect("built from paths already checked for NUL bytes")
}

impl Plan {
    /// `cap_last`: the highest capability number of the running kernel.
    pub(crate) fn new(
        spec: &SandboxSpec,
        cgroup_procs: &[std::path::PathBuf],
        cap_last: u32,
    ) -> Result<Plan, SandboxError> {
        let root = spec.staging_dir.clone();
        let inside = |p: &Path| root.join(p.strip_prefix("/").unwrap_or(p));
        let mut dirs = vec![
            inside(Path::new("/var")),
            inside(Path::new("/var/task")),
            inside(Path::new("/tmp")),
            inside(Path::new("/proc")),
            inside(Path::new("/dev")),
            inside(Path::new("/mnt")),
        ];
        let mut host = Vec::new();
        for dir in &spec.host_dirs {
            if !dir.is_absolute() {
                return Err(SandboxError::InvalidSpec(format!("{} is not absolute", dir.display())));
            }
            let Ok(meta) = std::fs::symlink_metadata(dir) else {
                continue; // e.g. no /lib64 on this host
            };
            for ancestor in dir.ancestors().skip(1).collect::<Vec<_>>().into_iter().rev().skip(1) {
                dirs.push(inside(ancestor));
            }
            if meta.file_type().is_symlink() {
                let to = std::fs::read_link(dir)
                    .map_err(|e| SandboxError::Io { what: format!("read link {}", dir.display()), source: e })?;
                host.push(HostEntry::Symlink { link: c(&to)?, target: c(&inside(dir))? });
            } else {
                dirs.push(inside(dir));
                host.push(HostEntry::Dir { source: c(dir)?, target: c(&inside(dir))? });
            }
        }
        let base_dirs = std::mem::take(&mut dirs);
        let mut mounts = Vec::new();
        for m in &spec.mounts {
            let rel = m.target.strip_prefix("/mnt").map_err(|_| {
                SandboxError::InvalidSpec(format!("mount target {} is not under /mnt/", m.target.display()))
            })?;
            if rel.as_os_str().is_empty() || rel.components().any(|c| !matches!(c, std::path::Component::Normal(_))) {
                return Err(SandboxError::InvalidSpec(format!("bad mount target {}", m.target.display())));
            }
            let mut sub = Path::new("/mnt").to_path_buf();
            for part in rel.components() {
                sub.push(part);
                dirs.push(inside(&sub));
            }
            mounts.push((c(&m.source)?, c(&inside(&m.target))?));
        }
        let mut ro_binds = Vec::new();
        for b in &spec.ro_binds {
            let normal = b.target.is_absolute()
                && b.target.components().skip(1).all(|c| matches!(c, std::path::Component::Normal(_)));
            let reserved = ["/mnt", "/tmp", "/proc", "/dev", "/var/task"].iter().any(|r| b.target.starts_with(r));
            if !normal || reserved || b.target == Path::new("/") {
                return Err(SandboxError::InvalidSpec(format!("bad read-only bind target {}", b.target.display())));
            }
            let mut sub = Path::new("/").to_path_buf();
            for part in b.target.components().skip(1) {
                sub.push(part);
                dirs.push(inside(&sub));
            }
            ro_binds.push((c(&b.source)?, c(&inside(&b.target))?));
        }
        dirs.dedup();
        let devices =
            DEVICES.iter().map(|d| (cs(format!("/dev/{d}")), cs(format!("{}/dev/{d}", root.display())))).collect();
        Ok(Plan {
            cgroup_procs: cgroup_procs.iter().map(|p| c(p)).collect::<Result<_, _>>()?,
            isolate_network: spec.isolate_network,
            root: c(&root)?,
            root_opts: cs("size=1m,mode=755".to_string()),
            base_dirs: base_dirs.iter().map(|d| c(d)).collect::<Result<_, _>>()?,
            spec_dirs: dirs.iter().map(|d| c(d)).collect::<Result<_, _>>()?,
            host,
            code_source: c(&spec.code_dir)?,
            code_target: c(&inside(Path::new("/var/task")))?,
            tmp_target: c(&inside(Path::new("/tmp")))?,
            tmp_opts: cs(format!("size={},mode=1777", spec.tmp_bytes)),
            tmp_device: spec.tmp_device.as_deref().map(c).transpose()?,
            dev_target: c(&inside(Path::new("/dev")))?,
            devices,
            mounts,
            ro_binds,
            proc_target: c(&inside(Path::new("/proc")))?,
            uid: spec.uid,
            gid: spec.gid,
            cap_last,
        })
    }

    /// In a spawner thread of floe (which may allocate): gives the thread its own
    /// mount namespace and builds what every sandbox has: the root tmpfs with the
    /// host's system directories read-only, `/dev`, and `/tmp`. Done ahead of cold
    /// starts for prepared sandboxes.
    pub(crate) fn build_base(&self) -> io::Result<()> {
        unshare(CloneFlags::CLONE_NEWNS)?;
        // Nothing we mount from here on propagates back to the host; mounts the host
        // makes later under a shared mount (a node's access point mounts) still reach
        // this namespace, so a sandbox prepared before them can bind them.
        mount(None::<&CStr>, c"/", None::<&CStr>, MsFlags::MS_REC | MsFlags::MS_SLAVE, None::<&CStr>)?;
        mount(Some(c"tmpfs"), self.root.as_c_str(), Some(c"tmpfs"), BASE, Some(self.root_opts.as_c_str()))?;
        mkdirs(&self.base_dirs)?;
        for entry in &self.host {
            match entry {
                HostEntry::Dir { source, target } => bind(source, target, BASE | MsFlags::MS_RDONLY)?,
                HostEntry::Symlink { link, target } => {
                    nix::unistd::symlinkat(link.as_c_str(), nix::fcntl::AT_FDCWD, target.as_c_str())?
                }
            }
        }
        mount(
            Some(c"tmpfs"),
            self.dev_target.as_c_str(),
            Some(c"tmpfs"),
            MsFlags::MS_NOSUID,
            Some(c"size=64k,mode=755"),
        )?;
        for (source, target) in &self.devices {
            touch(target)?;
            bind(source, target, MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC)?;
        }
        self.mount_tmp()
    }

    /// `/tmp`: the spec's disk, or a tmpfs of its size (over whatever is there).
    pub(crate) fn mount_tmp(&self) -> io::Result<()> {
        match &self.tmp_device {
            Some(device) => {
                // noinit_itable: no background zeroing of inode tables (ext4lazyinit) for
                // a file system that lives as long as one environment.
                mount(
                    Some(device.as_c_str()),
                    self.tmp_target.as_c_str(),
                    Some(c"ext4"),
                    BASE,
                    Some(c"noinit_itable"),
                )?;
                // SAFETY: chmod on a NUL-terminated path.
                check(unsafe { libc::chmod(self.tmp_target.as_ptr(), 0o1777) })
            }
            None => {
                mount(
                    Some(c"tmpfs"),
                    self.tmp_target.as_c_str(),
                    Some(c"tmpfs"),
                    BASE,
                    Some(self.tmp_opts.as_c_str()),
                )?;
                Ok(())
            }
        }
    }

    /// Still in the spawner thread, on a base tree: what belongs to this spec (the
    /// code, read-only binds, mounts under `/mnt`).
    pub(crate) fn build_specific(&self) -> io::Result<()> {
        mkdirs(&self.spec_dirs)?;
        bind(&self.code_source, &self.code_target, BASE | MsFlags::MS_RDONLY)?;
        for (source, target) in &self.ro_binds {
            bind(source, target, BASE | MsFlags::MS_RDONLY)?;
        }
        for (source, target) in &self.mounts {
            bind(source, target, BASE)?;
        }
        Ok(())
    }

    /// Runs in the forked child, already the first process of a new pid namespace,
    /// in the mount namespace its spawner thread built: makes it the root.
    pub(crate) fn enter(&self) -> io::Result<()> {
        for procs in &self.cgroup_procs {
            join_cgroup(procs)?;
        }
        // The mount namespace is the spawner thread's, which exits after the fork;
        // a fresh copy makes sure nothing of ours is shared with it.
        let mut flags = CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWIPC | CloneFlags::CLONE_NEWUTS;
        if self.isolate_network {
            flags |= CloneFlags::CLONE_NEWNET;
        }
        unshare(flags)?;
        mount(Some(c"proc"), self.proc_target.as_c_str(), Some(c"proc"), BASE | MsFlags::MS_NOEXEC, None::<&CStr>)?;
        // pivot_root(".", ".") stacks the old root under the new one; detaching it
        // leaves only the new tree (no directory for the old root needed).
        chdir(self.root.as_c_str())?;
        pivot_root(c".", c".")?;
        umount2(c".", MntFlags::MNT_DETACH)?;
        chdir(c"/")?;
        let ro = MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | BASE;
        mount(None::<&CStr>, c"/", None::<&CStr>, ro, None::<&CStr>)?;
        mount(
            None::<&CStr>,
            c"/dev",
            None::<&CStr>,
            MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | MsFlags::MS_NOSUID,
            None::<&CStr>,
        )?;
        // SAFETY: sethostname reads `len` bytes from a static buffer.
        check(unsafe { libc::sethostname(c"floe".as_ptr(), 4) })?;
        self.drop_privileges()?;
        chdir(c"/var/task")?;
        Ok(())
    }

    fn drop_privileges(&self) -> io::Result<()> {
        // The bounding set can only shrink while we still hold CAP_SETPCAP.
        for cap in 0..=self.cap_last {
            // SAFETY: prctl with integer arguments only.
            check(unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) })?;
        }
        // SAFETY: as above.
        check(unsafe { libc::prctl(libc::PR_CAP_AMBIENT, libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong, 0, 0, 0) })?;
        setgroups(&[Gid::from_raw(self.gid)])?;
        let (gid, uid) = (Gid::from_raw(self.gid), Uid::from_raw(self.uid));
        setresgid(gid, gid, gid)?;
        // Leaving uid 0 clears permitted and effective capabilities; clearing
        // the inheritable set too leaves none at all.
        setresuid(uid, uid, uid)?;
        clear_capabilities()?;
        // SAFETY: prctl with integer arguments only.
        check(unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) })?;
        Ok(())
    }
}

const BASE: MsFlags = MsFlags::MS_NOSUID.union(MsFlags::MS_NODEV);

fn mkdirs(dirs: &[CString]) -> io::Result<()> {
    for dir in dirs {
        match mkdir(dir.as_c_str(), Mode::from_bits_truncate(0o755)) {
            Ok(()) | Err(nix::errno::Errno::EEXIST) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

fn bind(source: &CStr, target: &CStr, flags: MsFlags) -> io::Result<()> {
    mount(Some(source), target, None::<&CStr>, MsFlags::MS_BIND, None::<&CStr>)?;
    // Bind mounts ignore most flags on creation; they take effect on remount.
    mount(None::<&CStr>, target, None::<&CStr>, MsFlags::MS_REMOUNT | MsFlags::MS_BIND | flags, None::<&CStr>)?;
    Ok(())
}

fn touch(path: &CStr) -> io::Result<()> {
    // SAFETY: `path` is a valid NUL-terminated string; the fd is closed below.
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_CREAT | libc::O_WRONLY | libc::O_CLOEXEC, 0o644) };
    check(fd)?;
    // SAFETY: fd was just opened by us.
    unsafe { libc::close(fd) };
    Ok(())
}

fn join_cgroup(procs: &CStr) -> io::Result<()> {
    // SAFETY: `procs` is a valid NUL-terminated string; the fd is closed below.
    let fd = unsafe { libc::open(procs.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC) };
    check(fd)?;
    // "0" means the writing process, in v1 and v2 alike.
    // SAFETY: writes one byte from a static buffer.
    let n = unsafe { libc::write(fd, c"0".as_ptr().cast(), 1) };
    // SAFETY: fd was just opened by us.
    unsafe { libc::close(fd) };
    check(n as libc::c_int)?;
    Ok(())
}

fn clear_capabilities() -> io::Result<()> {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;
    let mut header = Header { version: LINUX_CAPABILITY_VERSION_3, pid: 0 };
    let data =
        [Data { effective: 0, permitted: 0, inheritable: 0 }, Data { effective: 0, permitted: 0, inheritable: 0 }];
    // SAFETY: capset reads a v3 header and two data structs, both live on our stack.
    let rc = unsafe { libc::syscall(libc::SYS_capset, &mut header as *mut Header, data.as_ptr()) };
    check(rc as libc::c_int)
}

fn check(rc: libc::c_int) -> io::Result<()> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}
