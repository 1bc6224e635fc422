//! `floe fs ...` and `floe fsck`.

use crate::config::DataDir;
use anyhow::{bail, Result};
use clap::Subcommand;
use floe_fs::{FileSystem, FsConfig};
use floe_node::filesystems::{DeleteScope, NewFileSystem};
use floe_node::{Deployment, FileSystems};
use std::time::Duration;

#[derive(Subcommand)]
pub enum FsCommand {
    /// Create a file system.
    Create { name: String },
    /// List file systems.
    List,
    /// Delete a file system and all its data (refused while it is mounted).
    Delete { name: String },
    /// Show or set what every client may do: write, act as root.
    Policy(crate::policy_cmd::PolicyArgs),
}

pub fn run(paths: &DataDir, command: FsCommand) -> Result<()> {
    if let FsCommand::Policy(args) = command {
        return crate::policy_cmd::run(paths, args);
    }
    let fss = service(paths)?;
    match command {
        FsCommand::Create { name } => {
            let fs = fss.create_file_system(NewFileSystem::named(&name))?;
            println!("created file system {} ({}), id {}", fs.name, fs.uuid, fs.id);
        }
        FsCommand::List => {
            println!("{:<24} {:<20} {:>14} {:>10}  UUID", "NAME", "ID", "SIZE", "INODES");
            for fs in fss.list_file_systems()? {
                println!("{:<24} {:<20} {:>14} {:>10}  {}", fs.name, fs.id, fs.size_bytes, fs.used_inodes, fs.uuid);
            }
        }
        FsCommand::Delete { name } => {
            let id = fss.id_of_name(&name)?;
            // The command deletes "a file system and all its data": its access
            // points go with it (the EFS API refuses instead).
            let fs = fss.delete_file_system(id.as_str(), DeleteScope::WithAccessPoints)?;
            // The local store leaves the emptied directories of the file system's prefix.
            let _ = std::fs::remove_dir_all(paths.root.join("objects").join(&fs.uuid));
            let _ = std::fs::remove_dir_all(paths.cache(&name));
            println!("deleted file system {name}");
        }
        FsCommand::Policy(_) => unreachable!("handled above"),
    }
    Ok(())
}

/// The file systems service on the data directory, without a node: no functions
/// to consult and no mounts of its own (`floe mount` clients count as mounted).
pub fn service(paths: &DataDir) -> Result<FileSystems> {
    let meta = paths.meta()?;
    Ok(FileSystems::new(meta, paths.objects()?, None, None, Deployment::default()))
}

/// Creates file system `name` unless it exists.
pub fn create_if_missing(paths: &DataDir, name: &str) -> Result<()> {
    let fss = service(paths)?;
    if fss.id_of_name(name).is_ok() {
        return Ok(());
    }
    let fs = fss.create_file_system(NewFileSystem::named(name))?;
    println!("created file system {} ({}), id {}", fs.name, fs.uuid, fs.id);
    Ok(())
}

pub fn fsck(paths: &DataDir, name: &str, repair: bool) -> Result<()> {
    let meta = paths.meta()?;
    let config = FsConfig { gc_interval: Duration::from_secs(3600), ..FsConfig::default() };
    // Counted before this check's own client starts, which expires them.
    let info = meta.fs_by_name(name)?;
    let stale = meta.stale_sessions(info.id, config.session_ttl)?;
    let fs = FileSystem::mount(meta, paths.objects()?, name, config)?;
    let report = fs.fsck(repair)?;
    fs.close()?;
    let ns = &report.namespace;
    println!("stale sessions:   {stale}");
    println!("orphan objects:   {}", report.orphan_objects.len());
    println!("missing objects:  {}", report.missing_objects.len());
    for (slice, index) in report.missing_objects.iter().take(20) {
        println!("  missing: slice {slice} block {index}");
    }
    println!("bad entries:      {}", ns.bad_entries.len());
    for (dir, entry) in ns.bad_entries.iter().take(20) {
        println!("  bad entry: {:?} in directory {dir}", String::from_utf8_lossy(entry));
    }
    println!("wrong link counts: {}", ns.wrong_nlink.len());
    for (ino, recorded, counted) in ns.wrong_nlink.iter().take(20) {
        println!("  inode {ino}: nlink {recorded}, entries say {counted}");
    }
    println!("wrong parents:    {}", ns.wrong_parent.len());
    println!("unreachable:      {}", ns.unreachable.len());
    println!("dangling refs:    {}", ns.dangling_refs.len());
    println!("wrong refcounts:  {}", ns.wrong_refcounts.len());
    if report.repaired {
        println!(
            "repaired: deleted {} orphan objects, expired {} sessions, purged {} unlinked inodes, collected {} slices, \
             removed {} bad entries, fixed {} link counts and {} parents, linked {} inodes into /lost+found, \
             fixed {} slice reference counts",
            report.orphan_objects.len(),
            report.expired_sessions,
            report.purged_inodes,
            report.collected.slices,
            ns.bad_entries.len(),
            ns.wrong_nlink.len(),
            ns.wrong_parent.len(),
            ns.relinked.len(),
            ns.wrong_refcounts.len(),
        );
    }
    let lost = report.missing_objects.len() + ns.dangling_refs.len();
    if lost > 0 {
        bail!("{lost} block objects or slices are missing: file data was lost");
    }
    let inconsistent = ns.bad_entries.len()
        + ns.wrong_nlink.len()
        + ns.wrong_parent.len()
        + ns.unreachable.len()
        + ns.wrong_refcounts.len();
    if inconsistent > 0 && !repair {
        bail!("{inconsistent} namespace inconsistencies: run `floe fsck {name} --repair` to fix them");
    }
    if !report.orphan_objects.is_empty() && !repair {
        println!("run `floe fsck {name} --repair` to delete the orphan objects");
    }
    Ok(())
}
