//! `floe fs policy`: what a file system's clients may do.

use crate::config::DataDir;
use anyhow::Result;
use clap::Args;
use floe_meta::FsPolicy;

#[derive(Args)]
pub struct PolicyArgs {
    /// The file system.
    name: String,
    /// Every client refuses changes (EROFS).
    #[arg(long, value_name = "true|false")]
    read_only: Option<bool>,
    /// Whether root keeps its powers; `false` maps root to nobody (65534) on every client.
    #[arg(long, value_name = "true|false")]
    root_access: Option<bool>,
}

/// Shows the policy, after changing what the flags say. Running clients apply a
/// change within `floe_fs::POLICY_TTL`.
pub fn run(paths: &DataDir, args: PolicyArgs) -> Result<()> {
    let fss = crate::fs_cmd::service(paths)?;
    let id = fss.id_of_name(&args.name)?;
    let mut policy: FsPolicy = fss.client_policy(id.as_str())?;
    if args.read_only.is_some() || args.root_access.is_some() {
        if let Some(ro) = args.read_only {
            policy.read_only = ro;
        }
        if let Some(root) = args.root_access {
            policy.root_squash = !root;
        }
        fss.set_client_policy(id.as_str(), policy)?;
    }
    println!("read-only:   {}", policy.read_only);
    println!("root-access: {}", !policy.root_squash);
    Ok(())
}
