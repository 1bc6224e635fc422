//! `floe ap ...`: access points.

use crate::config::DataDir;
use anyhow::{bail, Result};
use clap::{Args, Subcommand};
use floe_node::filesystems::{AccessPointQuery, NewAccessPoint, PosixUser, RootDirectory};

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
    let fss = crate::fs_cmd::service(paths)?;
    match command {
        ApCommand::Create(args) => {
            let creation = root_creation(&args)?;
            let new = NewAccessPoint {
                client_token: None,
                file_system_id: fss.id_of_name(&args.fs)?.to_string(),
                posix_user: Some(PosixUser {
                    uid: args.uid.into(),
                    gid: args.gid.into(),
                    secondary_gids: args.secondary_gids.iter().map(|g| u64::from(*g)).collect(),
                }),
                root_directory: RootDirectory { path: Some(args.path), creation },
                tags: Vec::new(),
            };
            let ap = fss.create_access_point(new)?;
            println!("{}", ap.id);
        }
        ApCommand::List { fs } => {
            let file_system_id = fs.as_deref().map(|name| fss.id_of_name(name)).transpose()?.map(|id| id.to_string());
            println!("{:<22} {:<16} {:<24} {:>11} {:<12} {:<18}", "ID", "FS", "PATH", "UID:GID", "GROUPS", "ROOT");
            let mut query = AccessPointQuery { file_system_id, ..Default::default() };
            loop {
                let page = fss.describe_access_points(&query)?;
                for ap in page.items {
                    let groups: Vec<String> = ap.posix_user.groups.iter().map(u32::to_string).collect();
                    let root = ap.creation.map_or("-".to_string(), |c| format!("{}:{} {:o}", c.uid, c.gid, c.mode));
                    println!(
                        "{:<22} {:<16} {:<24} {:>11} {:<12} {:<18}",
                        ap.id,
                        ap.file_system_name,
                        ap.path,
                        format!("{}:{}", ap.posix_user.uid, ap.posix_user.gid),
                        if groups.is_empty() { "-".to_string() } else { groups.join(",") },
                        root
                    );
                }
                match page.next {
                    Some(next) => query.next_token = Some(next),
                    None => break,
                }
            }
        }
        ApCommand::Delete { id } => {
            let ap = fss.delete_access_point(&id)?;
            println!("deleted access point {}", ap.id);
        }
    }
    Ok(())
}

/// Owner and mode of the root directory: all three or none, as EFS asks.
fn root_creation(args: &CreateArgs) -> Result<Option<(u64, u64, String)>> {
    match (args.owner_uid, args.owner_gid, &args.mode) {
        (None, None, None) => Ok(None),
        (Some(uid), Some(gid), Some(mode)) => {
            parse_mode(mode)?;
            Ok(Some((uid.into(), gid.into(), mode.clone())))
        }
        _ => bail!("--owner-uid, --owner-gid and --mode go together"),
    }
}

fn parse_mode(s: &str) -> Result<u16> {
    match u16::from_str_radix(s, 8) {
        Ok(m) if (3..=4).contains(&s.len()) && m <= 0o7777 => Ok(m),
        _ => bail!("bad mode {s:?}: 3 or 4 octal digits, as 750 or 0755"),
    }
}
