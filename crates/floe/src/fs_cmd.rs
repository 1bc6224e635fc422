//! `floe fs ...` and `floe fsck`.

use crate::config::DataDir;
use anyhow::{bail, Result};
use clap::Subcommand;
use floe_fs::{BlockStore, FileSystem, FsConfig};
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
    let meta = paths.meta()?;
    match command {
        FsCommand::Create { name } => {
            let info = meta.create_fs(&name, &uuid::Uuid::new_v4().to_string())?;
            println!("created file system {} ({})", info.name, info.uuid);
        }
        FsCommand::List => {
            println!("{:<24} {:>14} {:>10}  UUID", "NAME", "SIZE", "INODES");
            for fs in meta.list_fs()? {
                println!("{:<24} {:>14} {:>10}  {}", fs.name, fs.used_bytes, fs.used_inodes, fs.uuid);
            }
        }
        FsCommand::Delete { name } => {
            let info = meta.fs_by_name(&name)?;
            let ttl = FsConfig::default().session_ttl;
            let live = meta.live_sessions(info.id, ttl)?;
            if live > 0 {
                bail!("file system {name} is mounted by {live} client(s); unmount it first");
            }
            let blocks = BlockStore::new(paths.objects()?, &info.uuid, &FsConfig::default())?;
            blocks.delete_all()?;
            meta.delete_fs(&name)?;
            // The local store leaves the emptied directories of the file system's prefix.
            let _ = std::fs::remove_dir_all(paths.root.join("objects").join(&info.uuid));
            let _ = std::fs::remove_dir_all(paths.cache(&name));
            println!("deleted file system {name}");
        }
        FsCommand::Policy(_) => unreachable!("handled above"),
    }
    Ok(())
}

/// Creates file system `name` unless it exists.
pub fn create_if_missing(paths: &DataDir, name: &str) -> Result<()> {
    let meta = paths.meta()?;
    match meta.create_fs(name, &uuid::Uuid::new_v4().to_string()) {
        Ok(info) => println!("created file system {} ({})", info.name, info.uuid),
        Err(floe_meta::MetaError::FileSystemExists(_)) => {}
        Err(e) => return Err(e.into()),
    }
    Ok(())
}

pub fn fsck(paths: &DataDir, name: &str, repair: bool) -> Result<()> {
    let meta = paths.meta()?;
    let config = FsConfig { gc_interval: Duration::from_secs(3600), ..FsConfig::default() };
    let fs = FileSystem::mount(meta, paths.objects()?, name, config)?;
    let report = fs.fsck(repair)?;
    fs.close()?;
    println!("orphan objects:   {}", report.orphan_objects.len());
    println!("missing objects:  {}", report.missing_objects.len());
    for (slice, index) in report.missing_objects.iter().take(20) {
        println!("  missing: slice {slice} block {index}");
    }
    if report.repaired {
        println!(
            "repaired: deleted {} orphan objects, expired {} sessions, purged {} unlinked inodes, collected {} slices",
            report.orphan_objects.len(),
            report.expired_sessions,
            report.purged_inodes,
            report.collected.slices
        );
    }
    if !report.missing_objects.is_empty() {
        bail!("{} block objects are missing: file data was lost", report.missing_objects.len());
    }
    if !report.orphan_objects.is_empty() && !repair {
        println!("run `floe fsck {name} --repair` to delete the orphan objects");
    }
    Ok(())
}
