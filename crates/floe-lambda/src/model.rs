//! The function model: what a function is, its limits, and their validation with
//! Lambda's rules and messages.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{LambdaError, Result};

/// The version every function has until versions exist.
pub const LATEST: &str = "$LATEST";

/// A function as stored: its settings and the code package it runs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Function {
    pub name: String,
    pub runtime: String,
    pub handler: String,
    pub memory_mb: u32,
    pub timeout_s: u32,
    pub ephemeral_mb: u32,
    #[serde(default)]
    pub environment: BTreeMap<String, String>,
    #[serde(default)]
    pub mounts: Vec<MountConfig>,
    #[serde(default)]
    pub description: String,
    /// Recorded, not enforced (floe has no IAM).
    #[serde(default)]
    pub role: Option<String>,
    /// Hex SHA-256 of the code package (zip).
    pub code_sha256: String,
    pub code_size: u64,
    /// Lambda's `LastModified` (`2026-11-23T14:05:09.123+0000`).
    pub last_modified: String,
    /// Changes at every update; environments of an older revision are retired.
    pub revision_id: String,
    /// Reserved concurrency: a cap on the function's environments, carved out of the
    /// account's limit. `Some(0)` throttles every invocation.
    #[serde(default)]
    pub reserved_concurrency: Option<u32>,
    /// Environments kept initialized ahead of demand.
    #[serde(default)]
    pub provisioned_concurrency: u32,
}

/// A directory shown read-write inside every environment at `local_mount_path`.
/// What `source` names is up to the node's [`crate::MountSources`]: an access point
/// ARN through the API, a host directory without a node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountConfig {
    /// What is mounted (an access point ARN, or a host directory).
    pub source: String,
    /// `/mnt/<name>`.
    pub local_mount_path: String,
}

/// A runtime identifier as AWS names it, and what it runs on this host.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Runtime {
    /// `python3.x`
    Python { minor: u32 },
    /// `nodejs18.x`, `nodejs20.x`, `nodejs22.x`
    Node { major: u32 },
    /// `provided`, `provided.al2`, `provided.al2023`: the package's `bootstrap`.
    Provided,
}

impl Runtime {
    pub fn parse(id: &str) -> Result<Runtime> {
        let runtime = if let Some(minor) = id.strip_prefix("python3.") {
            minor.parse().ok().filter(|m| (8..=14).contains(m)).map(|minor| Runtime::Python { minor })
        } else if let Some(major) = id.strip_prefix("nodejs").and_then(|r| r.strip_suffix(".x")) {
            major.parse().ok().filter(|m| [18, 20, 22].contains(m)).map(|major| Runtime::Node { major })
        } else if matches!(id, "provided" | "provided.al2" | "provided.al2023") {
            Some(Runtime::Provided)
        } else {
            None
        };
        runtime.ok_or_else(|| {
            LambdaError::invalid(format!(
                "Value {id} at 'runtime' failed to satisfy constraint: Member must satisfy enum value set: \
                 [python3.8, python3.9, python3.10, python3.11, python3.12, python3.13, nodejs18.x, nodejs20.x, \
                 nodejs22.x, provided, provided.al2, provided.al2023]"
            ))
        })
    }

    /// `AWS_EXECUTION_ENV`, as Lambda sets it (none for custom runtimes).
    pub fn execution_env(&self, id: &str) -> Option<String> {
        match self {
            Runtime::Provided => None,
            _ => Some(format!("AWS_Lambda_{id}")),
        }
    }
}

/// Sizes and bounds, Lambda's by default.
#[derive(Clone, Debug)]
pub struct Limits {
    pub max_zip_bytes: u64,
    pub max_unzipped_bytes: u64,
    /// Largest synchronous request and response payload.
    pub max_payload_bytes: usize,
    /// Largest asynchronous (`Event`) payload.
    pub max_async_payload_bytes: usize,
    /// Code packages of every function together (Lambda's 75 GB code storage).
    pub max_total_code_bytes: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_zip_bytes: 50 * 1024 * 1024,
            max_unzipped_bytes: 250 * 1024 * 1024,
            max_payload_bytes: 6 * 1024 * 1024,
            max_async_payload_bytes: 256 * 1024,
            max_total_code_bytes: 75 << 30,
        }
    }
}

/// Keys Lambda reserves for itself; a function may not set them.
const RESERVED_KEYS: &[&str] = &[
    "_HANDLER",
    "_X_AMZN_TRACE_ID",
    "AWS_DEFAULT_REGION",
    "AWS_REGION",
    "AWS_EXECUTION_ENV",
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_INITIALIZATION_TYPE",
    "AWS_LAMBDA_LOG_GROUP_NAME",
    "AWS_LAMBDA_LOG_STREAM_NAME",
    "AWS_ACCESS_KEY",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_LAMBDA_RUNTIME_API",
    "LAMBDA_TASK_ROOT",
    "LAMBDA_RUNTIME_DIR",
];

/// The settings a user gives (create and update).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Settings {
    pub runtime: Option<String>,
    pub handler: Option<String>,
    pub memory_mb: Option<u32>,
    pub timeout_s: Option<u32>,
    pub ephemeral_mb: Option<u32>,
    pub environment: Option<BTreeMap<String, String>>,
    pub mounts: Option<Vec<MountConfig>>,
    pub description: Option<String>,
    pub role: Option<String>,
}

pub fn validate_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(LambdaError::invalid(format!(
            "1 validation error detected: Value '{name}' at 'functionName' failed to satisfy constraint: \
             Member must satisfy regular expression pattern: [a-zA-Z0-9-_]+ and have length at most 64"
        )))
    }
}

impl Function {
    /// Applies `settings` over the current values (or the defaults for a new
    /// function) and checks every bound.
    pub fn apply(&mut self, s: Settings) -> Result<()> {
        macro_rules! set {
            ($($field:ident),*) => { $(if let Some(v) = s.$field { self.$field = v; })* };
        }
        set!(runtime, handler, memory_mb, timeout_s, ephemeral_mb, environment, mounts, description);
        if let Some(v) = s.role {
            self.role = Some(v);
        }
        self.validate()
    }

    pub fn validate(&self) -> Result<()> {
        validate_name(&self.name)?;
        Runtime::parse(&self.runtime)?;
        let handler_ok = !self.handler.is_empty()
            && self.handler.len() <= 128
            && !self.handler.bytes().any(|b| b.is_ascii_whitespace() || b.is_ascii_control());
        if !handler_ok {
            return Err(LambdaError::invalid(format!(
                "Value '{}' at 'handler' failed to satisfy constraint: Member must have length less than or \
                 equal to 128 and contain no whitespace",
                self.handler
            )));
        }
        if !(128..=10_240).contains(&self.memory_mb) {
            return Err(LambdaError::invalid(format!(
                "'MemorySize' value failed to satisfy constraint: Member must have value between 128 and 10240 \
                 (got {})",
                self.memory_mb
            )));
        }
        if !(1..=900).contains(&self.timeout_s) {
            return Err(LambdaError::invalid(format!(
                "'Timeout' value failed to satisfy constraint: Member must have value between 1 and 900 (got {})",
                self.timeout_s
            )));
        }
        if !(512..=10_240).contains(&self.ephemeral_mb) {
            return Err(LambdaError::invalid(format!(
                "'EphemeralStorage.Size' value failed to satisfy constraint: Member must have value between 512 \
                 and 10240 (got {})",
                self.ephemeral_mb
            )));
        }
        let reserved: Vec<&str> =
            self.environment.keys().map(String::as_str).filter(|k| RESERVED_KEYS.contains(k)).collect();
        if !reserved.is_empty() {
            return Err(LambdaError::invalid(format!(
                "Lambda was unable to configure your environment variables because the environment variables you \
                 have provided contains reserved keys that are currently not supported for modification. \
                 Reserved keys used in this request: {}",
                reserved.join(", ")
            )));
        }
        for key in self.environment.keys() {
            let ok = key.bytes().next().is_some_and(|b| b.is_ascii_alphabetic())
                && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
            if !ok {
                return Err(LambdaError::invalid(format!(
                    "Environment variable name '{key}' must match [a-zA-Z]([a-zA-Z0-9_])+"
                )));
            }
        }
        let env_size: usize = self.environment.iter().map(|(k, v)| k.len() + v.len()).sum();
        if env_size > 4096 {
            return Err(LambdaError::invalid(format!(
                "Lambda was unable to configure your environment variables because the environment variables you \
                 have provided exceeded the 4KB limit. String measured: {env_size} bytes"
            )));
        }
        let mut paths = std::collections::HashSet::new();
        for m in &self.mounts {
            let name = m.local_mount_path.strip_prefix("/mnt/").unwrap_or("");
            let ok = !name.is_empty()
                && name.len() <= 160
                && name != "."
                && name != ".."
                && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
            if !ok {
                return Err(LambdaError::invalid(format!(
                    "LocalMountPath '{}' must match ^/mnt/[a-zA-Z0-9-_.]+$",
                    m.local_mount_path
                )));
            }
            if !paths.insert(m.local_mount_path.as_str()) {
                return Err(LambdaError::invalid(format!(
                    "LocalMountPath '{}' is used more than once",
                    m.local_mount_path
                )));
            }
        }
        if self.description.len() > 256 {
            return Err(LambdaError::invalid("Description must be at most 256 characters"));
        }
        if self.reserved_concurrency.is_some_and(|r| r > 1_000_000) {
            return Err(LambdaError::invalid("ReservedConcurrentExecutions is out of range"));
        }
        Ok(())
    }

    /// The parsed runtime (validated at every write, so it parses).
    pub fn runtime_kind(&self) -> Runtime {
        Runtime::parse(&self.runtime).unwrap_or(Runtime::Provided)
    }
}

impl Function {
    /// Lambda's `FunctionConfiguration`, as `GetFunctionConfiguration` returns it.
    pub fn configuration(&self, arn: &str) -> serde_json::Value {
        use base64::Engine;
        let sha = (0..self.code_sha256.len() / 2)
            .filter_map(|i| u8::from_str_radix(&self.code_sha256[2 * i..2 * i + 2], 16).ok())
            .collect::<Vec<u8>>();
        let mut c = serde_json::json!({
            "FunctionName": self.name,
            "FunctionArn": arn,
            "Runtime": self.runtime,
            "Role": self.role.clone().unwrap_or_default(),
            "Handler": self.handler,
            "CodeSize": self.code_size,
            "Description": self.description,
            "Timeout": self.timeout_s,
            "MemorySize": self.memory_mb,
            "LastModified": self.last_modified,
            "CodeSha256": base64::engine::general_purpose::STANDARD.encode(sha),
            "Version": LATEST,
            "TracingConfig": { "Mode": "PassThrough" },
            "RevisionId": self.revision_id,
            "State": "Active",
            "LastUpdateStatus": "Successful",
            "PackageType": "Zip",
            "Architectures": [std::env::consts::ARCH.replace("aarch64", "arm64")],
            "EphemeralStorage": { "Size": self.ephemeral_mb },
        });
        if !self.environment.is_empty() {
            c["Environment"] = serde_json::json!({ "Variables": self.environment });
        }
        if !self.mounts.is_empty() {
            c["FileSystemConfigs"] = self
                .mounts
                .iter()
                .map(|m| serde_json::json!({ "Arn": m.source, "LocalMountPath": m.local_mount_path }))
                .collect();
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn function() -> Function {
        Function {
            name: "f".into(),
            runtime: "python3.12".into(),
            handler: "app.handler".into(),
            memory_mb: 128,
            timeout_s: 3,
            ephemeral_mb: 512,
            environment: BTreeMap::new(),
            mounts: Vec::new(),
            description: String::new(),
            role: None,
            code_sha256: String::new(),
            code_size: 0,
            last_modified: String::new(),
            revision_id: String::new(),
            reserved_concurrency: None,
            provisioned_concurrency: 0,
        }
    }

    #[test]
    fn runtimes_accept_aws_identifiers() {
        assert_eq!(Runtime::parse("python3.12").unwrap(), Runtime::Python { minor: 12 });
        assert_eq!(Runtime::parse("nodejs20.x").unwrap(), Runtime::Node { major: 20 });
        for id in ["provided", "provided.al2", "provided.al2023"] {
            assert_eq!(Runtime::parse(id).unwrap(), Runtime::Provided);
        }
        for id in ["python2.7", "python3", "nodejs16.x", "java21", "", "provided.al3"] {
            assert!(Runtime::parse(id).is_err(), "{id}");
        }
    }

    #[test]
    fn bounds_are_lambdas() {
        let mut f = function();
        assert!(f.validate().is_ok());
        for (memory, ok) in [(127, false), (128, true), (10_240, true), (10_241, false)] {
            f.memory_mb = memory;
            assert_eq!(f.validate().is_ok(), ok, "memory {memory}");
        }
        f.memory_mb = 128;
        for (timeout, ok) in [(0, false), (1, true), (900, true), (901, false)] {
            f.timeout_s = timeout;
            assert_eq!(f.validate().is_ok(), ok, "timeout {timeout}");
        }
        f.timeout_s = 3;
        for (tmp, ok) in [(511, false), (512, true), (10_240, true), (10_241, false)] {
            f.ephemeral_mb = tmp;
            assert_eq!(f.validate().is_ok(), ok, "ephemeral {tmp}");
        }
    }

    #[test]
    fn reserved_environment_keys_and_mount_paths_are_refused() {
        let mut f = function();
        f.environment.insert("AWS_REGION".into(), "x".into());
        let e = f.validate().unwrap_err();
        assert!(e.message.contains("Reserved keys used in this request: AWS_REGION"), "{e}");
        f.environment.clear();
        f.environment.insert("PYTHONPATH".into(), "/mnt/lib".into());
        assert!(f.validate().is_ok());
        for (path, ok) in [("/mnt/data", true), ("/mnt/a.b-c_d", true), ("/mnt/", false), ("/tmp/x", false)] {
            f.mounts = vec![MountConfig { source: "/srv".into(), local_mount_path: path.into() }];
            assert_eq!(f.validate().is_ok(), ok, "{path}");
        }
        f.mounts = vec![MountConfig { source: "/srv".into(), local_mount_path: "/mnt/a/b".into() }];
        assert!(f.validate().is_err());
        f.mounts = vec![MountConfig { source: "/srv".into(), local_mount_path: "/mnt/..".into() }];
        assert!(f.validate().is_err());
    }

    #[test]
    fn names_and_handlers() {
        for name in ["a", "my-func_1", &"x".repeat(64)] {
            assert!(validate_name(name).is_ok(), "{name}");
        }
        for name in ["", "a b", "a/b", "ü", &"x".repeat(65)] {
            assert!(validate_name(name).is_err(), "{name}");
        }
        let mut f = function();
        f.handler = "a b".into();
        assert!(f.validate().is_err());
    }
}
