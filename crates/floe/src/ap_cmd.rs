//! `floe ap ...`: access points.

use crate::config::DataDir;
use anyhow::{bail, Result};
use clap::{Args, Subcommand};
use floe_meta::{AccessPointId, Caller, NewAccessPoint, RootCreation};

#[derive(Subcommand)]
pub enum ApCommand {
    /// Create an access point; prints its id.
    Create(CreateArgs),
    /// List access points, of one file system or of all.
    List { fs: Option<String> },
    /// Delete an access point (its directory and files stay).
    Delete { id: String },
}

#[derive(Args)]
pub struct CreateArgs {
    /// The file system.
    fs: String,
    /// The root directory, an absolute path inside the file system.
    #[arg(long)]
    path: String,
    /// The uid every operation through the access point runs as.
    #[arg(long)]
    uid: u32,
    /// The gid every operation through the access point runs as.
    #[arg(long)]
    gid: u32,
    /// Secondary groups of that identity, comma-separated.
    #[arg(long, value_delimiter = ',')]
    secondary_gids: Vec<u32>,
    /// Owner of the root directory when it has to be created (with --owner-gid, --mode).
    #[arg(long)]
    owner_uid: Option<u32>,
    #[arg(long)]
    owner_gid: Option<u32>,
    /// Permissions of a created root directory, in octal (e.g. 750).
    #[arg(long)]
    mode: Option<String>,
}

pub fn run(paths: &DataDir, command: ApCommand) -> Result<()> {
    let meta = paths.meta()?;
    match command {
        ApCommand::Create(args) => {
            let creation = root_creation(&args)?;
            let new = NewAccessPoint {
                id: AccessPointId::from_entropy(uuid::Uuid::new_v4().as_u128()),
                path: args.path,
                identity: Caller { uid: args.uid, gid: args.gid, groups: args.secondary_gids },
                creation,
            };
            let ap = meta.create_access_point(&args.fs, &new)?;
            println!("{}", ap.id);
        }
        ApCommand::List { fs } => {
            let names: std::collections::HashMap<_, _> = meta.list_fs()?.into_iter().map(|f| (f.id, f.name)).collect();
            println!("{:<22} {:<16} {:<24} {:>11} {:<12} {:<18}", "ID", "FS", "PATH", "UID:GID", "GROUPS", "ROOT");
            for ap in meta.list_access_points(fs.as_deref())? {
                let groups: Vec<String> = ap.identity.groups.iter().map(u32::to_string).collect();
                let root = ap.creation.map_or("-".to_string(), |c| format!("{}:{} {:o}", c.uid, c.gid, c.mode));
                println!(
                    "{:<22} {:<16} {:<24} {:>11} {:<12} {:<18}",
                    ap.id,
                    names.get(&ap.fs).map_or("?", String::as_str),
                    ap.path,
                    format!("{}:{}", ap.identity.uid, ap.identity.gid),
                    if groups.is_empty() { "-".to_string() } else { groups.join(",") },
                    root
                );
            }
        }
        ApCommand::Delete { id } => {
            let ap = meta.delete_access_point(&AccessPointId::parse(&id)?)?;
            println!("deleted access point {}", ap.id);
        }
    }
    Ok(())
}

/// Owner and mode of the root directory: all three or none, as EFS asks.
fn root_creation(args: &CreateArgs) -> Result<Option<RootCreation>> {
    match (args.owner_uid, args.owner_gid, &args.mode) {
        (None, None, None) => Ok(None),
        (Some(uid), Some(gid), Some(mode)) => Ok(Some(RootCreation { uid, gid, mode: parse_mode(mode)? })),
        _ => bail!("--owner-uid, --owner-gid and --mode go together"),
    }
}

fn parse_mode(s: &str) -> Result<u16> {
    match u16::from_str_radix(s, 8) {
        Ok(m) if (3..=4).contains(&s.len()) && m <= 0o7777 => Ok(m),
        _ => bail!("bad mode {s:?}: 3 or 4 octal digits, as 750 or 0755"),
    }
}
