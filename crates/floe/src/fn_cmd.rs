//! `floe fn ...`: functions. With a `floe up` running on the data directory, each
//! command goes through its API (its warm environments, mounts and limits);
//! without one, the command opens the node in-process for its own duration.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use floe_lambda::code::Package;
use floe_lambda::{Functions, InvocationType, InvokeRequest, LambdaError, MountConfig, Settings};

use crate::config::DataDir;
use crate::node_config::{NodeLock, UpConfig};
use crate::up::UpArgs;
use floe_node::NodeSettings;

#[derive(Subcommand)]
pub enum FnCommand {
    /// Create a function from a directory or a zip file.
    Create {
        name: String,
        /// A directory (zipped by floe) or a .zip file.
        #[arg(long)]
        code: PathBuf,
        #[command(flatten)]
        settings: SettingsArgs,
    },
    /// Replace a function's code and/or change its settings.
    Update {
        name: String,
        #[arg(long)]
        code: Option<PathBuf>,
        #[command(flatten)]
        settings: SettingsArgs,
    },
    /// Invoke a function; prints its result (or error object) on stdout.
    Invoke {
        name: String,
        /// The event, as JSON.
        #[arg(long, conflicts_with = "payload_file")]
        payload: Option<String>,
        /// Read the event from a file (- for stdin).
        #[arg(long)]
        payload_file: Option<PathBuf>,
        /// RequestResponse (default), Event or DryRun.
        #[arg(long = "invocation-type", default_value = "RequestResponse")]
        invocation_type: String,
        /// Tail: print the last 4 KB of the invocation's log on stderr.
        #[arg(long = "log-type")]
        log_type: Option<String>,
    },
    /// List functions.
    List,
    /// Print a function's configuration (Lambda's FunctionConfiguration, as JSON).
    Get { name: String },
    /// Delete a function.
    Delete { name: String },
    /// Print a function's logs on this node.
    Logs {
        name: String,
        /// Only the last N lines.
        #[arg(long)]
        tail: Option<usize>,
    },
    /// Set (or with --delete, remove) a function's reserved concurrency.
    Concurrency {
        name: String,
        reserved: Option<u32>,
        #[arg(long, conflicts_with = "reserved")]
        delete: bool,
    },
}

#[derive(Args, Default)]
pub struct SettingsArgs {
    /// python3.x, nodejs18.x/20.x/22.x, provided, provided.al2, provided.al2023.
    #[arg(long)]
    runtime: Option<String>,
    /// module.function (python, node); anything for provided.
    #[arg(long)]
    handler: Option<String>,
    /// Memory size in MB (128-10240).
    #[arg(long)]
    memory: Option<u32>,
    /// Timeout in seconds (1-900).
    #[arg(long)]
    timeout: Option<u32>,
    /// Size of /tmp in MB (512-10240).
    #[arg(long)]
    ephemeral_storage: Option<u32>,
    /// Environment variable KEY=VALUE (repeatable); replaces all variables.
    #[arg(long = "env")]
    env: Vec<String>,
    /// An access point shown at /mnt/NAME: ACCESS_POINT:/mnt/NAME, by id (fsap-...) or
    /// ARN (repeatable); replaces all mounts.
    #[arg(long = "mount")]
    mounts: Vec<String>,
    #[arg(long)]
    description: Option<String>,
    /// Recorded (floe has no IAM).
    #[arg(long)]
    role: Option<String>,
}

impl SettingsArgs {
    pub(crate) fn into_settings(self) -> Result<Settings> {
        let environment = if self.env.is_empty() {
            None
        } else {
            let mut vars = BTreeMap::new();
            for kv in self.env {
                let (k, v) = kv.split_once('=').with_context(|| format!("--env {kv}: expected KEY=VALUE"))?;
                vars.insert(k.to_string(), v.to_string());
            }
            Some(vars)
        };
        let mounts = if self.mounts.is_empty() {
            None
        } else {
            let mut list = Vec::new();
            for m in self.mounts {
                let (source, target) =
                    m.rsplit_once(':').with_context(|| format!("--mount {m}: expected ACCESS_POINT:/mnt/NAME"))?;
                list.push(MountConfig { source: source.to_string(), local_mount_path: target.to_string() });
            }
            Some(list)
        };
        Ok(Settings {
            runtime: self.runtime,
            handler: self.handler,
            memory_mb: self.memory,
            timeout_s: self.timeout,
            ephemeral_mb: self.ephemeral_storage,
            environment,
            mounts,
            description: self.description,
            role: self.role,
        })
    }
}

pub(crate) fn package(path: &Path, limits: &floe_lambda::Limits) -> Result<Package> {
    let meta = std::fs::metadata(path).with_context(|| format!("code {}", path.display()))?;
    let package = if meta.is_dir() {
        Package::from_dir(path, limits)
    } else {
        let zip = std::fs::read(path).with_context(|| format!("read {}", path.display()))?;
        Package::from_zip(zip.into(), limits)
    };
    package.map_err(lambda_error)
}

fn lambda_error(e: LambdaError) -> anyhow::Error {
    anyhow::anyhow!("{}: {}", e.kind.code(), e.message)
}

/// The event of `fn invoke`: `--payload`, `--payload-file` (`-` for stdin), or `{}`.
pub(crate) fn read_payload(payload: Option<String>, payload_file: Option<PathBuf>) -> Result<Vec<u8>> {
    Ok(match (payload, payload_file) {
        (Some(p), _) => p.into_bytes(),
        (None, Some(f)) if f.as_os_str() == "-" => {
            let mut buf = Vec::new();
            std::io::stdin().read_to_end(&mut buf).context("read the event from stdin")?;
            buf
        }
        (None, Some(f)) => std::fs::read(&f).with_context(|| format!("read {}", f.display()))?,
        (None, None) => b"{}".to_vec(),
    })
}

/// `--log-type`: whether the log tail is asked for.
pub(crate) fn wants_tail(log_type: Option<&str>) -> Result<bool> {
    match log_type {
        None | Some("None") => Ok(false),
        Some("Tail") => Ok(true),
        Some(other) => bail!("--log-type {other}: expected Tail or None"),
    }
}

/// Prints a function's log streams on this node (the last `tail` lines).
pub(crate) fn print_logs(dir: &Path, tail: Option<usize>) -> Result<()> {
    let mut lines = Vec::new();
    for file in floe_lambda::logs::stream_files(dir) {
        let text = std::fs::read_to_string(&file).with_context(|| format!("read {}", file.display()))?;
        lines.extend(text.lines().map(str::to_string));
    }
    let skip = tail.map(|n| lines.len().saturating_sub(n)).unwrap_or(0);
    for line in &lines[skip..] {
        println!("{line}");
    }
    Ok(())
}

pub fn run(paths: &DataDir, command: FnCommand) -> Result<()> {
    if let Some(node) = crate::node_config::running(paths) {
        return crate::fn_remote::run(paths, node, command);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("start the async runtime")?;
    runtime.block_on(async {
        let Some((node, _lock)) = open(paths).await? else {
            // A node started meanwhile.
            let node = crate::node_config::running(paths).context("a floe node stopped while starting")?;
            return crate::fn_remote::run(paths, node, command);
        };
        let result = command_async(node.functions(), command).await;
        let closing = node.clone();
        tokio::task::spawn_blocking(move || closing.shutdown()).await?;
        result
    })
}

/// Opens this data directory's node in-process, for one command: only when no
/// `floe up` runs on it (its lock is then held until the command ends).
/// `None` when a node runs on it.
pub async fn open(paths: &DataDir) -> Result<Option<(floe_node::Node, NodeLock)>> {
    let Some(lock) = NodeLock::wait(paths, std::time::Duration::from_secs(60))? else {
        return Ok(None);
    };
    let config = UpConfig::load(paths, &UpArgs::default())?;
    let meta = paths.meta()?;
    let objects = paths.objects()?;
    let mut settings = NodeSettings::new(paths.root.join("node"), config.deployment);
    settings.functions.invoker.account_concurrency = config.account_concurrency;
    let node = floe_node::Node::open(meta, objects, settings).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(Some((node, lock)))
}

async fn command_async(functions: &Functions, command: FnCommand) -> Result<()> {
    let print = |v: serde_json::Value| println!("{}", serde_json::to_string_pretty(&v).expect("json"));
    match command {
        FnCommand::Create { name, code, settings } => {
            let package = package(&code, functions.limits())?;
            let f = functions.create_function(&name, settings.into_settings()?, package).await.map_err(lambda_error)?;
            print(f.configuration(&functions.function_arn(&f.name)));
        }
        FnCommand::Update { name, code, settings } => {
            let settings = settings.into_settings()?;
            let mut f = None;
            if let Some(code) = code {
                let package = package(&code, functions.limits())?;
                f = Some(functions.update_function_code(&name, package).await.map_err(lambda_error)?);
            }
            if settings != Settings::default() || f.is_none() {
                f = Some(functions.update_function_configuration(&name, settings).await.map_err(lambda_error)?);
            }
            let f = f.expect("updated");
            print(f.configuration(&functions.function_arn(&f.name)));
        }
        FnCommand::Invoke { name, payload, payload_file, invocation_type, log_type } => {
            let payload = read_payload(payload, payload_file)?;
            let tail = wants_tail(log_type.as_deref())?;
            let request = InvokeRequest {
                payload: payload.into(),
                invocation_type: InvocationType::parse(&invocation_type).map_err(lambda_error)?,
                tail,
                client_context: None,
            };
            let is_event = request.invocation_type == InvocationType::Event;
            let response = functions.invoke(&name, request).await.map_err(lambda_error)?;
            if let Some(log) = &response.log_result {
                use base64::Engine;
                let text = base64::engine::general_purpose::STANDARD.decode(log).unwrap_or_default();
                std::io::stderr().write_all(&text)?;
            }
            if is_event {
                // The event runs in this process: wait for its attempts to finish.
                eprintln!("accepted ({}); running it here, since no floe node is up", response.request_id);
                functions.drain_events().await;
            }
            let mut out = std::io::stdout();
            out.write_all(&response.payload)?;
            if !response.payload.is_empty() {
                out.write_all(b"\n")?;
            }
            if let Some(error) = response.function_error {
                bail!("the function failed ({error})");
            }
        }
        FnCommand::List => {
            let list: Vec<serde_json::Value> = functions
                .list_functions()
                .map_err(lambda_error)?
                .iter()
                .map(|f| f.configuration(&functions.function_arn(&f.name)))
                .collect();
            print(serde_json::json!({ "Functions": list }));
        }
        FnCommand::Get { name } => {
            let f = functions.get_function(&name).map_err(lambda_error)?;
            print(f.configuration(&functions.function_arn(&f.name)));
        }
        FnCommand::Delete { name } => functions.delete_function(&name).await.map_err(lambda_error)?,
        FnCommand::Logs { name, tail } => {
            functions.get_function(&name).map_err(lambda_error)?;
            print_logs(&functions.node_dir().join("logs").join(&name), tail)?;
        }
        FnCommand::Concurrency { name, reserved, delete } => {
            if delete {
                functions.delete_function_concurrency(&name).map_err(lambda_error)?;
            } else if let Some(r) = reserved {
                functions.put_function_concurrency(&name, r).map_err(lambda_error)?;
            }
            let r = functions.get_function_concurrency(&name).map_err(lambda_error)?;
            print(serde_json::json!({ "ReservedConcurrentExecutions": r }));
        }
    }
    Ok(())
}
