//! File system policies: EFS's IAM policy documents, and what floe derives from
//! them to enforce on every client — read-only without `elasticfilesystem:ClientWrite`,
//! root squashing without `elasticfilesystem:ClientRootAccess` (floe-meta's
//! [`FsPolicy`]). A document that asks for what floe cannot enforce (conditions,
//! principals other than everyone, refusing to mount, other actions) is refused
//! rather than half-applied.

use floe_meta::{Expect, FsPolicy, MetaError};
use serde_json::Value;

use super::error::{EfsError, Result};
use super::records::POLICY;
use super::FileSystems;

/// Longest document (EFS's limit).
const POLICY_MAX_BYTES: usize = 20_000;

/// The client actions a file system policy governs, as EFS names them.
const MOUNT: &str = "elasticfilesystem:ClientMount";
const WRITE: &str = "elasticfilesystem:ClientWrite";
const ROOT: &str = "elasticfilesystem:ClientRootAccess";
const CLIENT_ACTIONS: [&str; 3] = [MOUNT, WRITE, ROOT];

/// A file system's policy as given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyDescription {
    pub file_system_id: super::FsId,
    pub policy: String,
}

/// Which of the three client actions a statement covers.
#[derive(Clone, Copy, Debug, Default)]
struct Actions([bool; 3]);

impl Actions {
    fn add(&mut self, other: Actions) {
        for (mine, theirs) in self.0.iter_mut().zip(other.0) {
            *mine |= theirs;
        }
    }

    fn has(&self, action: &str) -> bool {
        CLIENT_ACTIONS.iter().position(|a| *a == action).is_some_and(|i| self.0[i])
    }
}

/// Case-insensitive IAM wildcard matching: `*` any run, `?` one character.
fn glob(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.to_lowercase().chars().collect();
    let t: Vec<char> = text.to_lowercase().chars().collect();
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// A string or a list of strings (IAM allows both).
fn strings<'a>(value: &'a Value, what: &str) -> std::result::Result<Vec<&'a str>, String> {
    match value {
        Value::String(s) => Ok(vec![s]),
        Value::Array(items) if !items.is_empty() => items
            .iter()
            .map(|v| v.as_str().ok_or_else(|| format!("{what} lists something other than strings: {v}")))
            .collect(),
        other => Err(format!("{what} is a string or a non-empty list of strings, not {other}")),
    }
}

fn everyone(principal: &Value) -> bool {
    match principal {
        Value::String(s) => s == "*",
        Value::Object(map) => {
            map.len() == 1
                && map.get("AWS").is_some_and(|aws| strings(aws, "Principal.AWS").is_ok_and(|list| list == ["*"]))
        }
        _ => false,
    }
}

/// What floe enforces for a policy document of the file system `fs_arn`, or why
/// it cannot.
pub fn derive_policy(document: &str, fs_arn: &str) -> std::result::Result<FsPolicy, String> {
    let doc: Value = serde_json::from_str(document).map_err(|e| format!("the policy is not valid JSON: {e}"))?;
    let Value::Object(doc) = doc else { return Err("the policy is a JSON object".to_string()) };
    if let Some(key) = doc.keys().find(|k| !["Version", "Id", "Statement"].contains(&k.as_str())) {
        return Err(format!("the policy has an unknown element {key:?}"));
    }
    match doc.get("Version").map(|v| v.as_str()) {
        None | Some(Some("2012-10-17" | "2008-10-17")) => {}
        Some(_) => return Err("Version is \"2012-10-17\" or \"2008-10-17\"".to_string()),
    }
    let statements: Vec<&Value> = match doc.get("Statement") {
        Some(Value::Array(list)) if !list.is_empty() => list.iter().collect(),
        Some(one @ Value::Object(_)) => vec![one],
        _ => return Err("the policy needs a Statement: an object or a non-empty list of them".to_string()),
    };
    let (mut allowed, mut denied) = (Actions::default(), Actions::default());
    for (n, statement) in statements.iter().enumerate() {
        let Value::Object(s) = statement else { return Err(format!("statement {n} is not an object")) };
        let at = |what: String| format!("statement {n}: {what}");
        for key in s.keys() {
            match key.as_str() {
                "Sid" | "Effect" | "Principal" | "Action" | "Resource" | "Condition" => {}
                "NotPrincipal" | "NotAction" | "NotResource" => {
                    return Err(at(format!("floe cannot enforce {key}; name what is allowed instead")))
                }
                other => return Err(at(format!("unknown element {other:?}"))),
            }
        }
        if s.get("Condition").is_some_and(|c| c.as_object().is_none_or(|c| !c.is_empty())) {
            return Err(at("floe cannot enforce conditions (Condition)".to_string()));
        }
        match s.get("Principal") {
            Some(p) if everyone(p) => {}
            Some(p) => {
                return Err(at(format!(
                    "floe enforces a file system policy for every client alike: Principal is \"*\" or \
                     {{\"AWS\": \"*\"}}, not {p}"
                )))
            }
            None => return Err(at("Principal is required (\"*\" or {\"AWS\": \"*\"})".to_string())),
        }
        if let Some(resource) = s.get("Resource") {
            for r in strings(resource, "Resource").map_err(at)? {
                if !glob(r, fs_arn) {
                    return Err(at(format!("Resource {r:?} is not this file system ({fs_arn})")));
                }
            }
        }
        let Some(action) = s.get("Action") else { return Err(at("Action is required".to_string())) };
        let mut covered = Actions::default();
        for pattern in strings(action, "Action").map_err(at)? {
            let matches: Vec<bool> = CLIENT_ACTIONS.iter().map(|a| glob(pattern, a)).collect();
            if !matches.contains(&true) {
                return Err(at(format!(
                    "floe cannot enforce the action {pattern:?}: a file system policy governs \
                     elasticfilesystem:ClientMount, ClientWrite and ClientRootAccess"
                )));
            }
            covered.add(Actions([matches[0], matches[1], matches[2]]));
        }
        match s.get("Effect").and_then(Value::as_str) {
            Some("Allow") => allowed.add(covered),
            Some("Deny") => denied.add(covered),
            _ => return Err(at("Effect is \"Allow\" or \"Deny\"".to_string())),
        }
    }
    if !allowed.has(MOUNT) || denied.has(MOUNT) {
        return Err(format!(
            "floe cannot refuse mounting: the policy must allow {MOUNT} to every principal and not deny it"
        ));
    }
    let granted = |action| allowed.has(action) && !denied.has(action);
    Ok(FsPolicy { read_only: !granted(WRITE), root_squash: !granted(ROOT) })
}

/// The document floe writes for a policy set from the command line.
fn document_for(policy: FsPolicy, fs_arn: &str) -> String {
    let mut actions = vec![MOUNT];
    if !policy.read_only {
        actions.push(WRITE);
    }
    if !policy.root_squash {
        actions.push(ROOT);
    }
    serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "floe-fs-policy",
            "Effect": "Allow",
            "Principal": {"AWS": "*"},
            "Action": actions,
            "Resource": fs_arn,
        }]
    })
    .to_string()
}

impl FileSystems {
    /// PutFileSystemPolicy: checks the document, then enforces what it says.
    pub fn put_file_system_policy(&self, fs: &str, document: &str) -> Result<PolicyDescription> {
        let info = self.lookup(fs, "FileSystemId")?;
        if document.is_empty() || document.len() > POLICY_MAX_BYTES {
            return Err(EfsError::bad(format!("Policy has 1 to {POLICY_MAX_BYTES} bytes, not {}", document.len())));
        }
        let id = super::FsId::from_uuid(&info.uuid);
        let policy = derive_policy(document, &self.fs_arn(&id)).map_err(EfsError::InvalidPolicy)?;
        self.enforce(&info.name, policy)?;
        self.save_document(&id, document)?;
        tracing::info!(fs = %id, read_only = policy.read_only, root_squash = policy.root_squash, "policy set");
        Ok(PolicyDescription { file_system_id: id, policy: document.to_string() })
    }

    /// DescribeFileSystemPolicy: the document as given (`PolicyNotFound` without one).
    pub fn describe_file_system_policy(&self, fs: &str) -> Result<PolicyDescription> {
        let info = self.lookup(fs, "FileSystemId")?;
        let id = super::FsId::from_uuid(&info.uuid);
        match self.load::<String>(POLICY, id.as_str())? {
            Some((policy, _)) => Ok(PolicyDescription { file_system_id: id, policy }),
            None => Err(EfsError::PolicyNotFound(id)),
        }
    }

    /// DeleteFileSystemPolicy: back to the default, everything allowed.
    pub fn delete_file_system_policy(&self, fs: &str) -> Result<()> {
        let info = self.lookup(fs, "FileSystemId")?;
        self.enforce(&info.name, FsPolicy::default())?;
        self.forget(POLICY, super::FsId::from_uuid(&info.uuid).as_str())
    }

    /// What every client of the file system enforces.
    pub fn client_policy(&self, fs: &str) -> Result<FsPolicy> {
        let info = self.lookup(fs, "FileSystemId")?;
        self.inner.meta.policy(info.id).map_err(|e| EfsError::meta("policy", e))
    }

    /// Sets what clients enforce directly (`floe fs policy`); the stored document
    /// becomes the one that says so, or none for the default.
    pub fn set_client_policy(&self, fs: &str, policy: FsPolicy) -> Result<()> {
        let info = self.lookup(fs, "FileSystemId")?;
        let id = super::FsId::from_uuid(&info.uuid);
        self.enforce(&info.name, policy)?;
        if policy == FsPolicy::default() {
            self.forget(POLICY, id.as_str())
        } else {
            self.save_document(&id, &document_for(policy, &self.fs_arn(&id)))
        }
    }

    fn enforce(&self, fs_name: &str, policy: FsPolicy) -> Result<()> {
        match self.inner.meta.set_policy(fs_name, policy) {
            Ok(()) => Ok(()),
            Err(MetaError::NoFileSystem(name)) => Err(EfsError::FileSystemNotFound(name)),
            Err(e) => Err(EfsError::meta("set policy", e)),
        }
    }

    fn save_document(&self, id: &super::FsId, document: &str) -> Result<()> {
        let body = document.to_string();
        match self.store(POLICY, id.as_str(), &body, Expect::Absent) {
            Err(MetaError::Exists) => self.store(POLICY, id.as_str(), &body, Expect::Present),
            other => other,
        }
        .map_err(|e| EfsError::meta("policy document", e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARN: &str = "arn:aws:elasticfilesystem:eu-west-3:123456789012:file-system/fs-0123456789abcdef0";

    fn allow(actions: &str) -> String {
        format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"*"}},"Action":{actions},"Resource":"{ARN}"}}]}}"#
        )
    }

    fn policy(read_only: bool, root_squash: bool) -> std::result::Result<FsPolicy, String> {
        Ok(FsPolicy { read_only, root_squash })
    }

    #[test]
    fn what_floe_enforces_for_each_document() {
        let table: Vec<(String, std::result::Result<FsPolicy, String>)> = vec![
            (allow(r#""*""#), policy(false, false)),
            (allow(r#""elasticfilesystem:*""#), policy(false, false)),
            (allow(r#""elasticfilesystem:Client*""#), policy(false, false)),
            (allow(r#"["elasticfilesystem:ClientMount"]"#), policy(true, true)),
            (allow(r#"["elasticfilesystem:ClientMount","elasticfilesystem:ClientWrite"]"#), policy(false, true)),
            (allow(r#"["elasticfilesystem:ClientMount","elasticfilesystem:ClientRootAccess"]"#), policy(true, false)),
            (allow(r#"["ELASTICFILESYSTEM:clientmount","elasticfilesystem:clientwrite"]"#), policy(false, true)),
        ];
        for (doc, want) in table {
            assert_eq!(derive_policy(&doc, ARN), want, "{doc}");
        }
        let deny_write = r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"*"},
                {"Effect":"Deny","Principal":"*","Action":"elasticfilesystem:ClientWrite","Resource":"*"}]}"#;
        assert_eq!(derive_policy(deny_write, ARN), policy(true, false));
    }

    #[test]
    fn what_floe_cannot_enforce_is_refused_with_a_reason() {
        let refused = |doc: &str, says: &str| {
            let why = derive_policy(doc, ARN).expect_err(doc);
            assert!(why.contains(says), "{doc}: {why}");
        };
        refused("{not json", "not valid JSON");
        refused("[]", "JSON object");
        refused(r#"{"Version":"2012-10-17"}"#, "Statement");
        refused(
            r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"*","Condition":{"Bool":{"aws:SecureTransport":"true"}}}]}"#,
            "conditions",
        );
        refused(
            r#"{"Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":"*"}]}"#,
            "Principal",
        );
        refused(r#"{"Statement":[{"Effect":"Allow","Action":"*"}]}"#, "Principal is required");
        refused(&allow(r#""s3:GetObject""#), "s3:GetObject");
        refused(&allow(r#""elasticfilesystem:ClientWrite""#), "cannot refuse mounting");
        refused(
            r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"*"},{"Effect":"Deny","Principal":"*","Action":"*"}]}"#,
            "cannot refuse mounting",
        );
        refused(r#"{"Statement":[{"Effect":"Maybe","Principal":"*","Action":"*"}]}"#, "Effect");
        refused(r#"{"Statement":[{"Effect":"Allow","Principal":"*","NotAction":"*"}]}"#, "NotAction");
        refused(
            r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"*","Resource":"arn:aws:elasticfilesystem:eu-west-3:123456789012:file-system/fs-99999999999999999"}]}"#,
            "not this file system",
        );
        refused(r#"{"Version":"2020-01-01","Statement":[]}"#, "Version");
    }

    #[test]
    fn documents_written_for_the_cli_derive_back() {
        for (read_only, root_squash) in [(true, true), (true, false), (false, true), (false, false)] {
            let p = FsPolicy { read_only, root_squash };
            assert_eq!(derive_policy(&document_for(p, ARN), ARN), Ok(p));
        }
    }

    #[test]
    fn wildcards() {
        assert!(glob("*", "anything"));
        assert!(glob("elasticfilesystem:Client*", "elasticfilesystem:ClientWrite"));
        assert!(glob("ELASTICFILESYSTEM:CLIENTWRITE", "elasticfilesystem:ClientWrite"));
        assert!(glob("elasticfilesystem:Client?ount", "elasticfilesystem:ClientMount"));
        assert!(!glob("elasticfilesystem:ClientW", "elasticfilesystem:ClientWrite"));
        assert!(glob("arn:aws:elasticfilesystem:*:*:file-system/*", ARN));
    }
}
