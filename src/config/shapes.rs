//! The shapes of values the configuration names: AWS regions, stack and bucket names, account
//! IDs, principal ARNs, e-mail addresses, log groups and queue URLs. One check each, used by
//! every section (and by `deploy`'s flags) that takes such a value; each error says what a
//! valid value looks like.

/// An AWS region name: `us-east-1`, `eu-central-2`, `us-gov-west-1`, `ap-southeast-4`.
pub(crate) fn check_region(region: &str) -> Result<(), String> {
    let parts: Vec<&str> = region.split('-').collect();
    let shaped = parts.len() >= 3
        && parts[0].len() == 2
        && parts[..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
        && parts[parts.len() - 1].bytes().all(|b| b.is_ascii_digit())
        && !parts[parts.len() - 1].is_empty();
    if shaped {
        Ok(())
    } else {
        Err(format!(
            "must be an AWS region name such as \"us-east-1\", got {region:?}"
        ))
    }
}

/// CloudFormation stack names: a letter, then letters, digits and hyphens, at most 128.
pub(crate) fn check_stack_name(name: &str) -> Result<(), String> {
    let shaped = name.len() <= crate::stack::names::MAX_STACK_NAME
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    if shaped {
        Ok(())
    } else {
        Err(format!(
            "must start with a letter and contain only letters, digits and hyphens (at most \
             128), as CloudFormation requires; got {name:?}"
        ))
    }
}

/// S3 bucket names, as the template's `TrailBucketName` pattern takes them: 3-63 lowercase
/// letters, digits, dots and hyphens, starting and ending with a letter or digit.
pub(crate) fn check_bucket_name(name: &str) -> Result<(), String> {
    let edge = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    let shaped = (3..=63).contains(&name.len())
        && edge(name.chars().next())
        && edge(name.chars().last())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-');
    if shaped {
        Ok(())
    } else {
        Err(format!(
            "must be an S3 bucket name (3-63 lowercase letters, digits, dots and hyphens, \
             starting and ending with a letter or digit), or \"\" for a bucket the stack \
             creates; got {name:?}"
        ))
    }
}

/// A KMS key ARN, `arn:PARTITION:kms:REGION:ACCOUNT:key/ID`, as the template's `KmsKeyArn`
/// takes it (CloudWatch Logs accepts neither an alias nor a bare key id).
pub(crate) fn check_kms_key_arn(arn: &str) -> Result<(), String> {
    let parsed = crate::aws::arn::Arn::parse(arn);
    let shaped = parsed.as_ref().is_some_and(|a| {
        a.service == "kms"
            && check_region(a.region).is_ok()
            && is_account_id(a.account)
            && a.resource.strip_prefix("key/").is_some_and(|id| {
                !id.is_empty() && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            })
    });
    if shaped {
        Ok(())
    } else {
        Err(format!(
            "must be the ARN of a KMS key, such as \"arn:aws:kms:us-east-1:123456789012:key/\
             1234abcd-12ab-34cd-56ef-1234567890ab\" (not an alias: CloudWatch Logs takes key \
             ARNs only), or \"\" for a key the stack creates; got {arn:?}"
        ))
    }
}

/// A 12-digit AWS account ID.
pub(crate) fn is_account_id(text: &str) -> bool {
    text.len() == 12 && text.bytes().all(|b| b.is_ascii_digit())
}

/// Allow-list principals are ARNs; an assumed-role session ARN would never match because
/// sessions are normalised to their role before matching.
pub(crate) fn check_principal(principal: &str) -> Result<(), String> {
    let Some(arn) = crate::aws::arn::Arn::parse(principal) else {
        return Err(format!(
            "must be a principal ARN such as \"arn:aws:iam::123456789012:role/ci-deployer\", \
             got {principal:?}"
        ));
    };
    if arn.service == "sts" {
        if let Some(role) = arn.role_of_session() {
            return Err(format!(
                "assumed-role sessions are matched by their role, so a session ARN never \
                 matches; write the role ARN instead: \"{role}\""
            ));
        }
    }
    Ok(())
}

/// Why `address` is not a usable e-mail address, if it is not: one `@` between a local part
/// and a domain, nothing that breaks a mail header or a list (spaces, commas, control
/// characters, `<>;"`), at most 254 characters. With `dotted`, the domain must also have a dot
/// (`example.com`), as SNS's e-mail subscriptions and the template's pattern require; mail to a
/// local relay may go to `root@localhost`.
pub(crate) fn email_address(address: &str, dotted: bool) -> Result<(), &'static str> {
    if address.len() > 254 {
        return Err("longer than 254 characters");
    }
    if address.chars().any(|c| c.is_whitespace() || c == ',') {
        return Err("it contains a space or a comma; give one address per item");
    }
    if address.chars().any(char::is_control) {
        return Err("it contains a control character");
    }
    let Some((local, domain)) = address.split_once('@') else {
        return Err("no @");
    };
    if domain.contains('@') {
        return Err("more than one @");
    }
    if local.is_empty() {
        return Err("nothing before the @");
    }
    if local.chars().any(|c| "<>;\"".contains(c)) {
        return Err("it contains one of < > ; \" before the @");
    }
    let labels: Vec<&str> = domain.split('.').collect();
    let domain_ok = labels.iter().all(|label| {
        !label.is_empty() && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    });
    if !domain_ok || (dotted && labels.len() < 2) {
        return Err("the domain after the @ is not a domain name like example.com");
    }
    Ok(())
}

/// A mailbox as a mail header takes it: `user@domain` or `Name <user@domain>`. Addresses come
/// from the operator, but a CR or LF here would still inject mail headers, so they are refused.
/// The SMTP notifier's mail library has the last word: what it cannot parse (`Doe, John <…>`,
/// `a.@example.com`) is refused here too, so `check --offline` passes only what `run` can send.
pub(crate) fn check_mailbox(mailbox: &str) -> Result<(), String> {
    let address = match (mailbox.find('<'), mailbox.strip_suffix('>')) {
        (Some(open), Some(inner)) => &inner[open + 1..],
        _ => mailbox.trim(),
    };
    let name_ok = !mailbox.chars().any(char::is_control);
    let reason = match email_address(address, false) {
        Ok(()) if name_ok => match mailbox.parse::<lettre::message::Mailbox>() {
            Ok(_) => return Ok(()),
            Err(error) if mailbox.contains(',') => format!(
                "the mail library refuses it: {error}; a display name with a comma must be \
                 in double quotes"
            ),
            Err(error) => format!("the mail library refuses it: {error}"),
        },
        outcome => outcome
            .err()
            .unwrap_or("it contains a control character")
            .to_owned(),
    };
    Err(format!(
        "must be an e-mail address such as \"security@example.com\" or \
         \"Security <security@example.com>\", got {mailbox:?} ({reason})"
    ))
}

/// CloudWatch Logs' rule for group names (CreateLogGroup's `logGroupName` pattern).
pub(crate) fn is_log_group_name(name: &str) -> bool {
    (1..=512).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-/.#".contains(c))
}

/// An SQS queue URL: `https://sqs.<region>.amazonaws.com/<account>/<name>` (or an emulator's,
/// `http://host:port/<account>/<name>`): a scheme, a host and a path, no spaces.
pub(crate) fn is_queue_url(url: &str) -> bool {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    rest.is_some_and(|r| {
        r.split_once('/')
            .is_some_and(|(host, path)| !host.is_empty() && !path.is_empty())
    }) && !url.contains(char::is_whitespace)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_names() {
        for good in ["abc", "my-trail.logs-2", &"a".repeat(63)] {
            assert!(check_bucket_name(good).is_ok(), "{good}");
        }
        for bad in ["ab", "-abc", "abc-", "ABC", "a_b_c", &"a".repeat(64)] {
            assert!(check_bucket_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_session_arn_is_refused_as_a_principal_even_without_a_role_name() {
        assert!(check_principal("arn:aws:iam::123456789012:role/ci").is_ok());
        for session in [
            "arn:aws:sts::123456789012:assumed-role/ci/build-1",
            "arn:aws:sts::123456789012:assumed-role//build-1",
        ] {
            let refused = check_principal(session).expect_err(session);
            assert!(refused.contains("write the role ARN instead"), "{refused}");
        }
        assert!(check_principal("ci-deployer").is_err());
    }

    #[test]
    fn mailbox_shapes() {
        assert!(check_mailbox("a@example.com").is_ok());
        assert!(check_mailbox("Security Team <sec@example.com>").is_ok());
        assert!(check_mailbox("root@localhost").is_ok(), "a local relay");
        assert!(check_mailbox("a@b.example\r\nBcc: evil@x").is_err());
        assert!(check_mailbox("no-at-sign").is_err());
        assert!(check_mailbox("a@@b").is_err());
        assert!(check_mailbox("Name\r\n <a@example.com>").is_err());
        assert!(
            check_mailbox("\"Doe, John\" <j@example.com>").is_ok(),
            "quoted"
        );
        for unsendable in ["Doe, John <j@example.com>", "a.@example.com"] {
            let refused = check_mailbox(unsendable).expect_err(unsendable);
            assert!(refused.contains("must be an e-mail address"), "{refused}");
            assert!(
                unsendable.parse::<lettre::message::Mailbox>().is_err(),
                "the notifier refuses {unsendable:?} too"
            );
        }
    }

    #[test]
    fn bad_email_addresses_say_why() {
        for (bad, why) in [
            ("admin", "no @"),
            ("@example.com", "nothing before"),
            ("admin@", "not a domain name"),
            ("admin@example", "not a domain name"),
            ("a@b@example.com", "more than one @"),
            ("admin@example..com", "not a domain name"),
            ("a@example.com,b@example.com", "a space or a comma"),
            ("ad min@example.com", "a space or a comma"),
        ] {
            let reason = email_address(bad, true).expect_err(bad);
            assert!(reason.contains(why), "{bad}: {reason}");
        }
        email_address("first.last+tag@sub.example.co.uk", true).expect("valid");
        assert!(email_address("root@localhost", true).is_err());
        assert!(email_address("root@localhost", false).is_ok());
    }

    #[test]
    fn log_groups_and_queue_urls() {
        assert!(is_log_group_name("iamwatchd-LogGroup-1"));
        assert!(!is_log_group_name("no spaces allowed"));
        assert!(is_queue_url("https://sqs.us-east-1.amazonaws.com/1/q"));
        assert!(is_queue_url("http://127.0.0.1:4566/123456789012/q"));
        assert!(!is_queue_url("sqs.us-east-1.amazonaws.com/1/q"));
        assert!(!is_queue_url("https://host/"));
    }
}
