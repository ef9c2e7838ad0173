//! Managed policy documents read from IAM for the analysis: a policy's default version
//! (`GetPolicy`) and a version's document (`GetPolicyVersion`, cached by ARN and version id:
//! a version never changes once created).

use std::collections::HashMap;
use std::sync::Mutex;

use aws_sdk_iam::Client;
use serde_json::Value;

use super::policy;
use crate::aws::errors::{AwsError, Kind};

/// The AWS actions this module calls (the daemon's policy, `deploy/iamwatchd-policy.json`,
/// must allow exactly the union of every module's list; `src/aws/actions.rs` enforces it).
#[cfg(test)]
pub(crate) const ACTIONS: &[&str] = &["iam:GetPolicy", "iam:GetPolicyVersion"];

/// Versions kept in memory at most; the cache starts over when full.
const CACHE_ENTRIES: usize = 512;

/// Why a version could not be read, in words for the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Missing {
    /// IAM says it does not exist (deleted since, possibly in the same burst of changes).
    Gone(String),
    /// Any other failure.
    Failed(String),
}

impl Missing {
    fn of(error: AwsError, what: &str) -> Missing {
        match error.kind {
            Kind::NotFound => Missing::Gone(format!("{what} no longer exists (deleted since)")),
            _ => Missing::Failed(format!("reading {what} failed: {error}")),
        }
    }

    /// The reason in words.
    pub(crate) fn reason(&self) -> &str {
        match self {
            Missing::Gone(why) | Missing::Failed(why) => why,
        }
    }
}

/// An IAM client with the version cache.
pub(crate) struct Iam {
    client: Client,
    cache: Mutex<HashMap<(String, String), Value>>,
}

impl Iam {
    /// A lookup through `client`.
    pub(crate) fn new(client: Client) -> Iam {
        Iam {
            client,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The id of `arn`'s default version now.
    pub(crate) async fn default_version(&self, arn: &str) -> Result<String, Missing> {
        let answer = self
            .client
            .get_policy()
            .policy_arn(arn)
            .send()
            .await
            .map_err(|e| Missing::of(AwsError::read(&e), &format!("policy {arn}")))?;
        answer
            .policy()
            .and_then(|p| p.default_version_id())
            .map(str::to_owned)
            .ok_or_else(|| Missing::Failed(format!("GetPolicy named no default version of {arn}")))
    }

    /// The document of `arn`'s version `id` (as JSON).
    pub(crate) async fn version(&self, arn: &str, id: &str) -> Result<Value, Missing> {
        let key = (arn.to_owned(), id.to_owned());
        if let Some(hit) = self
            .cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
        {
            return Ok(hit.clone());
        }
        let what = format!("version {id} of {arn}");
        let answer = self
            .client
            .get_policy_version()
            .policy_arn(arn)
            .version_id(id)
            .send()
            .await
            .map_err(|e| Missing::of(AwsError::read(&e), &what))?;
        let text = answer
            .policy_version()
            .and_then(|v| v.document())
            .ok_or_else(|| {
                Missing::Failed(format!("GetPolicyVersion returned no document for {what}"))
            })?;
        // IAM returns the document URL-encoded: the one parser reads both.
        let document = policy::parse(&Value::String(text.to_owned()))
            .unwrap_or_else(|| Value::String(text.to_owned()));
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= CACHE_ENTRIES {
            cache.clear();
        }
        cache.insert(key, document.clone());
        Ok(document)
    }
}
