//! ARNs and the other AWS names the code takes apart, parsed in one place.
//!
//! Values come from the configuration (checked) and from CloudTrail records (untrusted): every
//! function here returns `None` for text of another shape instead of guessing.

/// An Amazon Resource Name: `arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Arn<'a> {
    /// `aws`, `aws-cn`, `aws-us-gov`, …
    pub partition: &'a str,
    /// `iam`, `sns`, `sts`, …
    pub service: &'a str,
    /// Empty for global services (IAM).
    pub region: &'a str,
    /// The owning account's 12 digits; `aws` for AWS-managed policies, empty where the
    /// resource belongs to no account in the ARN (S3 buckets).
    pub account: &'a str,
    /// Everything after the fifth `:` (it may hold `:` and `/` itself).
    pub resource: &'a str,
}

impl<'a> Arn<'a> {
    /// Splits `text` into its six parts; `None` unless it starts with `arn:` and names a
    /// partition, a service and a resource.
    pub fn parse(text: &'a str) -> Option<Arn<'a>> {
        let arn = Arn::split(text)?;
        let named = !arn.partition.is_empty() && !arn.service.is_empty();
        named.then_some(arn)
    }

    /// [`Arn::parse`] without asking for a partition and a service: CloudTrail records are
    /// read as they come (hand-edited ones say `arn:aws::sts:…`), only the resource must be
    /// there.
    fn split(text: &'a str) -> Option<Arn<'a>> {
        let mut parts = text.splitn(6, ':');
        if parts.next()? != "arn" {
            return None;
        }
        let arn = Arn {
            partition: parts.next()?,
            service: parts.next()?,
            region: parts.next()?,
            account: parts.next()?,
            resource: parts.next()?,
        };
        (!arn.resource.is_empty()).then_some(arn)
    }

    /// The role behind an assumed-role session ARN (`arn:aws:sts::123:assumed-role/Role/session`
    /// → `arn:aws:iam::123:role/Role`; the role's path is not in a session ARN).
    pub(crate) fn role_of_session(&self) -> Option<String> {
        let rest = self.resource.strip_prefix("assumed-role/")?;
        let role = rest.split('/').next().unwrap_or(rest);
        Some(format!(
            "arn:{}:iam::{}:role/{role}",
            self.partition, self.account
        ))
    }
}

/// The role behind an assumed-role session ARN, for text that may not be an ARN at all (read
/// as leniently as [`Arn::split`] reads).
pub(crate) fn role_of_session(arn: &str) -> Option<String> {
    Arn::split(arn)?.role_of_session()
}

/// A role ARN without its path (`arn:aws:iam::1:role/ops/ci` → `arn:aws:iam::1:role/ci`), the
/// way a session ARN names its role; other text unchanged.
pub(crate) fn without_role_path(arn: &str) -> String {
    match arn.split_once(":role/") {
        Some((prefix, rest)) => {
            let name = rest.rsplit('/').next().unwrap_or(rest);
            format!("{prefix}:role/{name}")
        }
        None => arn.to_owned(),
    }
}

/// The last segment of an ARN or a path: `arn:aws:iam::aws:policy/AdministratorAccess` →
/// `AdministratorAccess`.
pub(crate) fn last_segment(text: &str) -> &str {
    text.rsplit(['/', ':']).next().unwrap_or(text)
}

/// The region of an SNS topic ARN (`arn:aws:sns:eu-west-1:123456789012:alerts`), when every
/// part of it is there.
pub(crate) fn topic_region(topic_arn: &str) -> Option<&str> {
    let arn = Arn::parse(topic_arn)?;
    let complete = arn.service == "sns"
        && !arn.region.is_empty()
        && !arn.account.is_empty()
        && !arn.resource.contains(':');
    complete.then_some(arn.region)
}

/// The region of an SQS queue URL (`https://sqs.<region>.amazonaws.com/<account>/<name>`),
/// `None` for URLs of another shape (an emulator's).
pub(crate) fn queue_url_region(url: &str) -> Option<&str> {
    let host = url.split("://").nth(1)?.split('/').next()?;
    let mut labels = host.split('.');
    (labels.next()? == "sqs")
        .then(|| labels.next())
        .flatten()
        .filter(|region| !region.is_empty() && *region != "amazonaws")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_arn_has_six_parts_and_the_resource_keeps_its_colons() {
        let arn = Arn::parse("arn:aws:logs:us-east-1:123456789012:log-group:/x:*").unwrap();
        assert_eq!(
            (arn.partition, arn.service, arn.region, arn.account),
            ("aws", "logs", "us-east-1", "123456789012")
        );
        assert_eq!(arn.resource, "log-group:/x:*");
        assert_eq!(Arn::parse("arn:aws:iam::aws:policy/X").unwrap().region, "");
        for bad in [
            "",
            "alerts",
            "arn:aws:sns",
            "arn::sns:r:1:t",
            "urn:aws:sns:r:1:t",
        ] {
            assert_eq!(Arn::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn session_arn_without_issuer_still_normalises_to_the_role() {
        assert_eq!(
            role_of_session("arn:aws:sts::123456789012:assumed-role/admin/alice").as_deref(),
            Some("arn:aws:iam::123456789012:role/admin")
        );
        assert_eq!(role_of_session("arn:aws:iam::123456789012:user/bob"), None);
        assert_eq!(role_of_session("not an arn"), None);
        assert_eq!(
            role_of_session("arn:aws::sts:101010101111:assumed-role/UserRole/userid").as_deref(),
            Some("arn:aws:iam::101010101111:role/UserRole"),
            "a hand-edited record without a service still names its role"
        );
    }

    #[test]
    fn role_paths_and_last_segments() {
        assert_eq!(
            without_role_path("arn:aws:iam::1:role/ops/ci"),
            "arn:aws:iam::1:role/ci"
        );
        assert_eq!(
            without_role_path("arn:aws:iam::1:user/u"),
            "arn:aws:iam::1:user/u"
        );
        assert_eq!(
            last_segment("arn:aws:iam::aws:policy/AdministratorAccess"),
            "AdministratorAccess"
        );
        assert_eq!(last_segment("plain"), "plain");
    }

    #[test]
    fn the_region_comes_from_the_topic_arn() {
        assert_eq!(
            topic_region("arn:aws:sns:eu-west-1:123456789012:alerts"),
            Some("eu-west-1")
        );
        assert_eq!(
            topic_region("arn:aws-cn:sns:cn-north-1:123456789012:a"),
            Some("cn-north-1")
        );
        assert_eq!(topic_region("arn:aws:sqs:eu-west-1:123456789012:q"), None);
        assert_eq!(topic_region("alerts"), None);
        assert_eq!(topic_region("arn:aws:sns::123456789012:alerts"), None);
    }

    #[test]
    fn the_queue_region_comes_from_an_sqs_url() {
        assert_eq!(
            queue_url_region("https://sqs.eu-west-1.amazonaws.com/123456789012/q"),
            Some("eu-west-1")
        );
        assert_eq!(
            queue_url_region("http://127.0.0.1:4566/123456789012/q"),
            None
        );
        assert_eq!(queue_url_region("https://sqs.amazonaws.com/1/q"), None);
    }
}
