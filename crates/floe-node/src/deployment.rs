//! What every ARN of a deployment is made of.

/// The region and account a deployment answers for. Every node of a deployment is
/// configured with the same ones.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Deployment {
    pub region: String,
    pub account_id: String,
}

impl Default for Deployment {
    fn default() -> Deployment {
        Deployment { region: "us-east-1".to_string(), account_id: "000000000000".to_string() }
    }
}

impl Deployment {
    /// `arn:aws:<service>:<region>:<account>:<resource>`.
    pub fn arn(&self, service: &str, resource: &str) -> String {
        format!("arn:aws:{service}:{}:{}:{resource}", self.region, self.account_id)
    }

    /// The resource part of an ARN of this deployment and service, if `arn` is one.
    pub fn resource<'a>(&self, service: &str, arn: &'a str) -> Option<&'a str> {
        let prefix = format!("arn:aws:{service}:{}:{}:", self.region, self.account_id);
        arn.strip_prefix(prefix.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arns_round_trip_only_within_the_deployment() {
        let d = Deployment { region: "eu-west-1".into(), account_id: "123456789012".into() };
        let arn = d.arn("elasticfilesystem", "access-point/fsap-0123456789abcdef0");
        assert_eq!(arn, "arn:aws:elasticfilesystem:eu-west-1:123456789012:access-point/fsap-0123456789abcdef0");
        assert_eq!(d.resource("elasticfilesystem", &arn), Some("access-point/fsap-0123456789abcdef0"));
        assert_eq!(d.resource("lambda", &arn), None);
        let other = Deployment { region: "us-east-1".into(), account_id: "123456789012".into() };
        assert_eq!(other.resource("elasticfilesystem", &arn), None);
    }
}
