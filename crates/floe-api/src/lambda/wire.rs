//! The JSON bodies Lambda's operations take, and their checks: what is malformed
//! (`InvalidRequestContentException`, naming the field), what is missing, and the
//! fields of Lambda's model that floe does not support (`InvalidParameterValueException`
//! saying so, unless the value asks for what floe does anyway).

use std::collections::BTreeMap;

use base64::Engine;
use floe_lambda::{ErrorKind, MountConfig, Settings};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;

use super::{invalid, lambda_error};
use crate::AwsError;

/// Parses a request body into `T`; an empty body is `{}`.
pub(crate) fn parse<T: DeserializeOwned>(operation: &str, body: &[u8]) -> Result<T, AwsError> {
    let body: &[u8] = if body.iter().all(u8::is_ascii_whitespace) { b"{}" } else { body };
    let mut de = serde_json::Deserializer::from_slice(body);
    let not_json = |detail: String| {
        lambda_error(
            ErrorKind::InvalidRequestContent,
            format!("Could not parse request body of {operation} into json: {detail}"),
        )
    };
    let parsed: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        not_json(if inner.is_data() && path != "." { format!("{path}: {inner}") } else { inner.to_string() })
    })?;
    de.end().map_err(|e| not_json(e.to_string()))?;
    Ok(parsed)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Environment {
    #[serde(rename = "Variables", default)]
    pub variables: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileSystemConfig {
    #[serde(rename = "Arn")]
    pub arn: String,
    #[serde(rename = "LocalMountPath")]
    pub local_mount_path: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct EphemeralStorage {
    #[serde(rename = "Size")]
    pub size: u32,
}

/// `Code` of CreateFunction. Only `ZipFile` is served; the rest are named so that
/// the refusal can say so.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub(crate) struct FunctionCode {
    pub zip_file: Option<String>,
    #[serde(rename = "S3Bucket")]
    pub s3_bucket: Option<Value>,
    #[serde(rename = "S3Key")]
    pub s3_key: Option<Value>,
    #[serde(rename = "S3ObjectVersion")]
    pub s3_object_version: Option<Value>,
    pub image_uri: Option<Value>,
    #[serde(rename = "SourceKMSKeyArn")]
    pub source_kms_key_arn: Option<Value>,
}

/// The settings both CreateFunction and UpdateFunctionConfiguration take.
#[derive(Debug, Default)]
pub(crate) struct Configuration {
    pub runtime: Option<String>,
    pub role: Option<String>,
    pub handler: Option<String>,
    pub description: Option<String>,
    pub timeout: Option<u32>,
    pub memory_size: Option<u32>,
    pub environment: Option<Environment>,
    pub file_system_configs: Option<Vec<FileSystemConfig>>,
    pub ephemeral_storage: Option<EphemeralStorage>,
}

/// The `CreateFunction` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub(crate) struct CreateFunction {
    pub function_name: Option<String>,
    pub code: Option<FunctionCode>,
    pub runtime: Option<String>,
    pub role: Option<String>,
    pub handler: Option<String>,
    pub description: Option<String>,
    pub timeout: Option<u32>,
    pub memory_size: Option<u32>,
    pub environment: Option<Environment>,
    pub file_system_configs: Option<Vec<FileSystemConfig>>,
    pub ephemeral_storage: Option<EphemeralStorage>,
    pub publish: Option<Value>,
    pub package_type: Option<Value>,
    pub architectures: Option<Value>,
    pub tags: Option<Value>,
    pub layers: Option<Value>,
    pub vpc_config: Option<Value>,
    pub tracing_config: Option<Value>,
    pub dead_letter_config: Option<Value>,
    #[serde(rename = "KMSKeyArn")]
    pub kms_key_arn: Option<Value>,
    pub image_config: Option<Value>,
    pub snap_start: Option<Value>,
    pub logging_config: Option<Value>,
    pub code_signing_config_arn: Option<Value>,
}

impl CreateFunction {
    /// What is required and missing, in the model's order.
    pub fn missing(&self) -> Vec<&'static str> {
        [
            ("FunctionName", self.function_name.is_none()),
            ("Role", self.role.is_none()),
            ("Code", self.code.is_none()),
            ("Runtime", self.runtime.is_none()),
            ("Handler", self.handler.is_none()),
        ]
        .into_iter()
        .filter_map(|(name, missing)| missing.then_some(name))
        .collect()
    }

    pub fn unsupported(&self) -> Result<(), AwsError> {
        refuse_unsupported(&[
            ("Publish", &self.publish),
            ("PackageType", &self.package_type),
            ("Architectures", &self.architectures),
            ("Tags", &self.tags),
            ("Layers", &self.layers),
            ("VpcConfig", &self.vpc_config),
            ("TracingConfig", &self.tracing_config),
            ("DeadLetterConfig", &self.dead_letter_config),
            ("KMSKeyArn", &self.kms_key_arn),
            ("ImageConfig", &self.image_config),
            ("SnapStart", &self.snap_start),
            ("LoggingConfig", &self.logging_config),
            ("CodeSigningConfigArn", &self.code_signing_config_arn),
        ])
    }

    pub fn configuration(&mut self) -> Configuration {
        Configuration {
            runtime: self.runtime.take(),
            role: self.role.take(),
            handler: self.handler.take(),
            description: self.description.take(),
            timeout: self.timeout.take(),
            memory_size: self.memory_size.take(),
            environment: self.environment.take(),
            file_system_configs: self.file_system_configs.take(),
            ephemeral_storage: self.ephemeral_storage.take(),
        }
    }
}

/// The `UpdateFunctionConfiguration` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub(crate) struct UpdateConfiguration {
    pub runtime: Option<String>,
    pub role: Option<String>,
    pub handler: Option<String>,
    pub description: Option<String>,
    pub timeout: Option<u32>,
    pub memory_size: Option<u32>,
    pub environment: Option<Environment>,
    pub file_system_configs: Option<Vec<FileSystemConfig>>,
    pub ephemeral_storage: Option<EphemeralStorage>,
    pub revision_id: Option<String>,
    pub vpc_config: Option<Value>,
    pub tracing_config: Option<Value>,
    pub dead_letter_config: Option<Value>,
    #[serde(rename = "KMSKeyArn")]
    pub kms_key_arn: Option<Value>,
    pub layers: Option<Value>,
    pub image_config: Option<Value>,
    pub snap_start: Option<Value>,
    pub logging_config: Option<Value>,
}

impl UpdateConfiguration {
    pub fn unsupported(&self) -> Result<(), AwsError> {
        refuse_unsupported(&[
            ("VpcConfig", &self.vpc_config),
            ("TracingConfig", &self.tracing_config),
            ("DeadLetterConfig", &self.dead_letter_config),
            ("KMSKeyArn", &self.kms_key_arn),
            ("Layers", &self.layers),
            ("ImageConfig", &self.image_config),
            ("SnapStart", &self.snap_start),
            ("LoggingConfig", &self.logging_config),
        ])
    }

    pub fn configuration(self) -> Configuration {
        Configuration {
            runtime: self.runtime,
            role: self.role,
            handler: self.handler,
            description: self.description,
            timeout: self.timeout,
            memory_size: self.memory_size,
            environment: self.environment,
            file_system_configs: self.file_system_configs,
            ephemeral_storage: self.ephemeral_storage,
        }
    }
}

/// The `UpdateFunctionCode` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub(crate) struct UpdateCode {
    pub zip_file: Option<String>,
    pub revision_id: Option<String>,
    #[serde(rename = "S3Bucket")]
    pub s3_bucket: Option<Value>,
    #[serde(rename = "S3Key")]
    pub s3_key: Option<Value>,
    #[serde(rename = "S3ObjectVersion")]
    pub s3_object_version: Option<Value>,
    pub image_uri: Option<Value>,
    #[serde(rename = "SourceKMSKeyArn")]
    pub source_kms_key_arn: Option<Value>,
    pub publish: Option<Value>,
    pub dry_run: Option<Value>,
    pub architectures: Option<Value>,
}

impl UpdateCode {
    pub fn unsupported(&self) -> Result<(), AwsError> {
        refuse_unsupported(&[
            ("Publish", &self.publish),
            ("DryRun", &self.dry_run),
            ("Architectures", &self.architectures),
        ])
    }

    pub fn code(&self) -> FunctionCode {
        FunctionCode {
            zip_file: self.zip_file.clone(),
            s3_bucket: self.s3_bucket.clone(),
            s3_key: self.s3_key.clone(),
            s3_object_version: self.s3_object_version.clone(),
            image_uri: self.image_uri.clone(),
            source_kms_key_arn: self.source_kms_key_arn.clone(),
        }
    }
}

/// `PutFunctionConcurrency`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PutConcurrency {
    #[serde(rename = "ReservedConcurrentExecutions")]
    pub reserved: Option<u32>,
}

/// `PutProvisionedConcurrencyConfig`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PutProvisioned {
    #[serde(rename = "ProvisionedConcurrentExecutions")]
    pub provisioned: Option<u32>,
}

/// The architecture functions run on here, as Lambda names it.
pub(crate) fn host_architecture() -> &'static str {
    match std::env::consts::ARCH {
        "aarch64" => "arm64",
        other => other,
    }
}

/// Refuses a field floe does not support, unless its value asks for nothing more
/// than what floe does (no publishing, a zip, the host's architecture, …).
fn refuse_unsupported(fields: &[(&str, &Option<Value>)]) -> Result<(), AwsError> {
    for (field, value) in fields {
        let Some(value) = value else { continue };
        let empty = |v: &Value| match v {
            Value::Null => true,
            Value::Array(a) => a.is_empty(),
            Value::Object(o) => o.values().all(|v| v.is_null() || v.as_array().is_some_and(Vec::is_empty)),
            _ => false,
        };
        let harmless = match *field {
            "Publish" | "DryRun" => *value == Value::Bool(false),
            "PackageType" => value.as_str() == Some("Zip"),
            "Architectures" => {
                value.as_array().is_some_and(|a| a.len() == 1 && a[0].as_str() == Some(host_architecture()))
            }
            "TracingConfig" => value.get("Mode").and_then(Value::as_str).is_none_or(|m| m == "PassThrough"),
            _ => empty(value),
        };
        if !harmless {
            let hint = match *field {
                "Publish" => "floe functions have only the version $LATEST".to_string(),
                "PackageType" => "floe runs .zip packages (PackageType Zip)".to_string(),
                "Architectures" => format!("this node runs [\"{}\"]", host_architecture()),
                "TracingConfig" => "only Mode PassThrough".to_string(),
                _ => "leave it out".to_string(),
            };
            return Err(invalid(format!("floe does not support {field} = {value}: {hint}")));
        }
    }
    Ok(())
}

/// The zip a `Code` carries, decoded.
pub(crate) fn zip_of(code: &FunctionCode) -> Result<Vec<u8>, AwsError> {
    let others = [
        ("S3Bucket", &code.s3_bucket),
        ("S3Key", &code.s3_key),
        ("S3ObjectVersion", &code.s3_object_version),
        ("ImageUri", &code.image_uri),
        ("SourceKMSKeyArn", &code.source_kms_key_arn),
    ];
    if let Some((field, _)) = others.iter().find(|(_, v)| v.as_ref().is_some_and(|v| !v.is_null())) {
        return Err(invalid(format!(
            "floe does not support Code.{field}: only Code.ZipFile (the base64 of a .zip package) is supported"
        )));
    }
    let zip =
        code.zip_file.as_deref().ok_or_else(|| invalid("Code.ZipFile (the base64 of a .zip package) is required"))?;
    base64::engine::general_purpose::STANDARD
        .decode(zip.trim())
        .map_err(|e| lambda_error(ErrorKind::InvalidRequestContent, format!("Code.ZipFile is not valid base64: {e}")))
}

/// An IAM role ARN, as Lambda requires it (recorded only: floe has no IAM).
fn check_role(role: &str) -> Result<(), AwsError> {
    let parts: Vec<&str> = role.splitn(6, ':').collect();
    let ok = parts.len() == 6
        && parts[0] == "arn"
        && parts[1].starts_with("aws")
        && parts[2] == "iam"
        && parts[3].is_empty()
        && parts[4].len() == 12
        && parts[4].bytes().all(|b| b.is_ascii_digit())
        && parts[5].strip_prefix("role/").is_some_and(|name| {
            !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"+=,.@-_/".contains(&b))
        });
    if ok {
        Ok(())
    } else {
        Err(invalid(format!(
            "1 validation error detected: Value '{role}' at 'role' failed to satisfy constraint: Member must \
             satisfy regular expression pattern: arn:(aws[a-zA-Z-]*)?:iam::\\d{{12}}:role/?[a-zA-Z_0-9+=,.@\\-_/]+"
        )))
    }
}

impl Configuration {
    /// The functions service's settings.
    pub fn settings(self) -> Result<Settings, AwsError> {
        if let Some(role) = &self.role {
            check_role(role)?;
        }
        let mounts = match self.file_system_configs {
            Some(configs) if configs.len() > 1 => {
                return Err(invalid(format!("FileSystemConfigs takes at most 1 file system (got {})", configs.len())))
            }
            Some(configs) => Some(
                configs
                    .into_iter()
                    .map(|c| MountConfig { source: c.arn, local_mount_path: c.local_mount_path })
                    .collect(),
            ),
            None => None,
        };
        Ok(Settings {
            runtime: self.runtime,
            handler: self.handler,
            memory_mb: self.memory_size,
            timeout_s: self.timeout,
            ephemeral_mb: self.ephemeral_storage.map(|e| e.size),
            environment: self.environment.map(|e| e.variables),
            mounts,
            description: self.description,
            role: self.role,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_bodies_name_what_is_wrong() {
        let message = |body: &str| parse::<CreateFunction>("CreateFunction", body.as_bytes()).unwrap_err();
        let e = message("{\"FunctionName\": ");
        assert_eq!(e.code, "InvalidRequestContentException");
        let e = message(r#"{"MemorySize": "big"}"#);
        assert!(e.message().contains("MemorySize: invalid type: string \"big\""), "{}", e.message());
        let e = message(r#"{"Colour": "blue"}"#);
        assert!(e.message().contains("unknown field `Colour`"), "{}", e.message());
        let e = message(r#"{"Environment": {"Variables": {"A": 1}}}"#);
        assert!(e.message().contains("Environment.Variables.A"), "{}", e.message());
        let e = message("[1]");
        assert_eq!(e.code, "InvalidRequestContentException");
        let e = message("{} {}");
        assert_eq!(e.code, "InvalidRequestContentException");
        let ok: CreateFunction = parse("CreateFunction", b"").unwrap();
        assert_eq!(ok.missing(), ["FunctionName", "Role", "Code", "Runtime", "Handler"]);
    }

    #[test]
    fn unsupported_fields_are_refused_unless_harmless() {
        let body = |json: &str| parse::<CreateFunction>("CreateFunction", json.as_bytes()).unwrap().unsupported();
        assert!(body(r#"{"Publish": false, "PackageType": "Zip", "Tags": {}, "Layers": []}"#).is_ok());
        assert!(body(r#"{"VpcConfig": {"SubnetIds": [], "SecurityGroupIds": []}}"#).is_ok());
        assert!(body(r#"{"TracingConfig": {"Mode": "PassThrough"}}"#).is_ok());
        for bad in [
            r#"{"Publish": true}"#,
            r#"{"PackageType": "Image"}"#,
            r#"{"Architectures": ["sparc"]}"#,
            r#"{"Tags": {"a": "b"}}"#,
            r#"{"TracingConfig": {"Mode": "Active"}}"#,
            r#"{"KMSKeyArn": "arn:aws:kms:x"}"#,
        ] {
            let e = body(bad).unwrap_err();
            assert_eq!(e.code, "InvalidParameterValueException", "{bad}");
            assert!(e.message().starts_with("floe does not support"), "{}", e.message());
        }
    }

    #[test]
    fn roles_are_iam_role_arns() {
        assert!(check_role("arn:aws:iam::123456789012:role/lambda-role").is_ok());
        assert!(check_role("arn:aws-cn:iam::123456789012:role/path/x").is_ok());
        for bad in ["", "role", "arn:aws:iam::1234:role/x", "arn:aws:iam::123456789012:user/x"] {
            assert!(check_role(bad).is_err(), "{bad}");
        }
    }
}
