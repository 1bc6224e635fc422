//! `floe`: the command line. Parses arguments, loads configuration, wires the crates
//! together and reports errors in one line.

mod ap_cmd;
mod config;
mod credentials;
mod fn_cmd;
mod fn_remote;
mod fs_cmd;
mod mount;
mod node_config;
mod policy_cmd;
mod route_cmd;
mod status_cmd;
mod up;

use anyhow::Result;
use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser)]
#[command(name = "floe", version, about = "Serverless functions with a shared, elastic POSIX file system")]
struct Cli {
    /// Where floe keeps its metadata database, objects and caches.
    #[arg(long, global = true, env = "FLOE_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// The metadata engine shared by the nodes: postgres://user:password@host/db
    /// (default: SQLite in the data directory; or `meta =` in its floe.toml).
    #[arg(long, global = true, env = "FLOE_META", value_name = "URL")]
    meta: Option<String>,
    /// The object store shared by the nodes:
    /// s3://bucket[/prefix]?endpoint=http://host:port&region=R&path_style=true, with
    /// AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (default: the data directory's
    /// objects/; or `store =` in its floe.toml).
    #[arg(long, global = true, env = "FLOE_STORE", value_name = "URL")]
    store: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a node: the AWS-compatible API, HTTP triggers, functions and their file
    /// systems, until SIGINT or SIGTERM.
    Up(up::UpArgs),
    /// Manage file systems.
    Fs {
        #[command(subcommand)]
        command: fs_cmd::FsCommand,
    },
    /// Manage access points: application entries into a file system, with their own
    /// root directory and identity.
    Ap {
        #[command(subcommand)]
        command: ap_cmd::ApCommand,
    },
    /// Manage and invoke functions.
    Fn {
        #[command(subcommand)]
        command: fn_cmd::FnCommand,
    },
    /// Manage HTTP routes to functions.
    Route {
        #[command(subcommand)]
        command: route_cmd::RouteCommand,
    },
    /// Mount a file system with FUSE.
    Mount(mount::MountArgs),
    /// Unmount a floe mount.
    Umount {
        /// The mount point.
        dir: PathBuf,
    },
    /// Show the backends, the nodes and the file system sessions of this deployment.
    Status(status_cmd::StatusArgs),
    /// Check a file system's metadata against its objects, and repair what is safe.
    Fsck {
        name: String,
        /// Delete orphan objects, expire dead sessions, purge unlinked inodes.
        #[arg(long)]
        repair: bool,
    },
}

fn main() {
    // Die quietly on a closed stdout (`floe fn list | head`), as command-line tools do.
    // SAFETY: setting a signal's disposition to the default has no preconditions.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("FLOE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    if let Err(e) = run(cli) {
        eprintln!("floe: {e:#}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> Result<()> {
    let paths = config::DataDir::resolve(cli.data_dir, cli.meta, cli.store)?;
    match cli.command {
        Command::Up(args) => up::run(paths, args),
        Command::Fs { command } => fs_cmd::run(&paths, command),
        Command::Ap { command } => ap_cmd::run(&paths, command),
        Command::Fn { command } => fn_cmd::run(&paths, command),
        Command::Route { command } => route_cmd::run(&paths, command),
        Command::Mount(args) => mount::run(&paths, args),
        Command::Umount { dir } => mount::unmount(&paths, &dir),
        Command::Fsck { name, repair } => fs_cmd::fsck(&paths, &name, repair),
        Command::Status(args) => status_cmd::run(&paths, args),
    }
}
