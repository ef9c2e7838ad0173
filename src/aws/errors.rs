//! One reading of an AWS SDK error for every caller: what kind of failure it is ([`Kind`]),
//! with the service's code and message. Each caller decides what the kind means for it (retry,
//! back off, give up) and adds the fix that fits its own context; none reads `SdkError` itself.

use std::fmt;

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

/// What kind of failure an AWS call met.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// The service asked the caller to slow down: retry later, and slower.
    Throttled,
    /// An answer said "not now" (a 5xx, an internal error, a request timeout): retrying the
    /// same call can succeed.
    Transient,
    /// No answer came: the endpoint could not be reached or did not answer in time (network,
    /// proxy, DNS, `AWS_ENDPOINT_URL`).
    Unreachable,
    /// The credentials are missing, invalid or expired.
    Credentials,
    /// The credentials are fine, but may not do this (IAM, a resource policy, a KMS key).
    Denied,
    /// What the call names does not exist.
    NotFound,
    /// The service refused the request as it is: the same call fails the same way again.
    Rejected,
}

impl Kind {
    /// Whether the same call may succeed later without anyone changing anything.
    pub(crate) fn is_retryable(self) -> bool {
        matches!(self, Kind::Throttled | Kind::Transient | Kind::Unreachable)
    }
}

/// An AWS call's failure, read once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AwsError {
    /// What kind of failure it is.
    pub kind: Kind,
    /// The service's error code (`AccessDenied`, `ThrottlingException`), when it answered.
    pub code: Option<String>,
    /// The service's message, or else the innermost cause, on one line.
    pub message: String,
    /// The HTTP status of the answer, when one came.
    pub status: Option<u16>,
}

impl AwsError {
    /// Reads an SDK error of any AWS service.
    pub fn read<E>(error: &SdkError<E, HttpResponse>) -> AwsError
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let status = error.raw_response().map(|r| r.status().as_u16());
        let (kind, code, message) = match error {
            SdkError::ServiceError(service) => {
                let inner = service.err();
                let message = inner
                    .message()
                    .map(str::to_owned)
                    .unwrap_or_else(|| root_cause(error));
                let code = inner.code();
                (kind_of(code, &message, status), code, message)
            }
            SdkError::DispatchFailure(failure) if failure.is_io() || failure.is_timeout() => {
                (Kind::Unreachable, None, root_cause(error))
            }
            // The SDK resolves credentials just before sending; a chain that found none (or
            // a provider that failed) surfaces as a dispatch failure that says so.
            SdkError::DispatchFailure(_) if mentions_credentials(error) => {
                (Kind::Credentials, None, root_cause(error))
            }
            SdkError::TimeoutError(_) => (Kind::Unreachable, None, "timed out".to_owned()),
            SdkError::ConstructionFailure(_) => (Kind::Rejected, None, root_cause(error)),
            SdkError::ResponseError(_) => (kind_of(None, "", status), None, root_cause(error)),
            _ => (Kind::Transient, None, root_cause(error)),
        };
        AwsError {
            kind,
            code: code.map(str::to_owned),
            message,
            status,
        }
    }

    /// An answer with this code, message and status, read as [`AwsError::read`] reads one.
    #[cfg(test)]
    pub(crate) fn answered(code: Option<&str>, message: &str, status: Option<u16>) -> AwsError {
        AwsError {
            kind: kind_of(code, message, status),
            code: code.map(str::to_owned),
            message: message.to_owned(),
            status,
        }
    }
}

impl fmt::Display for AwsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.code {
            Some(code) if self.message.is_empty() => f.write_str(code),
            Some(code) => write!(f, "{code}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// The kind of an answer, from its error code first and its HTTP status second. Throttling
/// and transient codes are the SDK's own (the lists its standard retry classifier,
/// `AwsErrorCodeClassifier`, retries: `RequestLimitExceeded`, `RequestTimeout`, …) plus the
/// few it leaves to the services' models; a status the SDK's `HttpStatusCodeClassifier`
/// retries (500, 502, 503, 504), 429 and 408 is transient whatever the body says.
fn kind_of(code: Option<&str>, message: &str, status: Option<u16>) -> Kind {
    use aws_runtime::retries::classifiers::{THROTTLING_ERRORS, TRANSIENT_ERRORS};
    match code {
        Some(code) if THROTTLING_ERRORS.contains(&code) => Kind::Throttled,
        Some(code) if TRANSIENT_ERRORS.contains(&code) => Kind::Transient,
        Some("Throttled" | "KMSThrottling" | "KMSThrottlingException") => Kind::Throttled,
        Some(
            "InternalFailure"
            | "InternalError"
            | "InternalErrorException"
            | "InternalServiceError"
            | "ServiceUnavailable"
            | "ServiceUnavailableException",
        ) => Kind::Transient,
        Some(
            "InvalidClientTokenId"
            | "UnrecognizedClientException"
            | "SignatureDoesNotMatch"
            | "IncompleteSignature"
            | "InvalidAccessKeyId"
            | "InvalidSignatureException"
            | "MissingAuthenticationToken"
            | "ExpiredToken"
            | "ExpiredTokenException",
        ) => Kind::Credentials,
        Some(
            "AccessDenied"
            | "AccessDeniedException"
            | "UnauthorizedOperation"
            | "AuthorizationError"
            | "AuthorizationErrorException"
            | "KMSAccessDenied"
            | "KMSAccessDeniedException",
        ) => Kind::Denied,
        Some(
            "NotFound"
            | "NotFoundException"
            | "ResourceNotFoundException"
            | "NoSuchEntity"
            | "TrailNotFoundException"
            | "QueueDoesNotExist"
            | "AWS.SimpleQueueService.NonExistentQueue",
        ) => Kind::NotFound,
        // CloudFormation answers a stack that does not exist with a ValidationError.
        Some("ValidationError") if message.contains("does not exist") => Kind::NotFound,
        _ => match status {
            None => Kind::Transient,
            Some(status) if status >= 500 || status == 429 || status == 408 => Kind::Transient,
            Some(_) => Kind::Rejected,
        },
    }
}

/// Whether any error of the chain speaks of credentials.
fn mentions_credentials(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(error);
    while let Some(error) = current {
        if error
            .to_string()
            .to_ascii_lowercase()
            .contains("credential")
        {
            return true;
        }
        current = error.source();
    }
    false
}

/// The innermost message of an error chain (the SDK's outer layers say only "dispatch
/// failure"), on one line.
pub(crate) fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut current = error;
    while let Some(source) = current.source() {
        current = source;
    }
    current
        .to_string()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(code: Option<&str>, status: Option<u16>) -> Kind {
        AwsError::answered(code, "", status).kind
    }

    #[test]
    fn codes_decide_before_statuses() {
        assert_eq!(
            kind(Some("ThrottlingException"), Some(400)),
            Kind::Throttled
        );
        assert_eq!(kind(Some("Throttled"), Some(400)), Kind::Throttled);
        assert_eq!(kind(Some("InternalError"), Some(500)), Kind::Transient);
        assert_eq!(kind(Some("AccessDenied"), Some(403)), Kind::Denied);
        assert_eq!(kind(Some("AuthorizationError"), Some(403)), Kind::Denied);
        assert_eq!(
            kind(Some("InvalidClientTokenId"), Some(403)),
            Kind::Credentials
        );
        assert_eq!(kind(Some("ExpiredToken"), Some(400)), Kind::Credentials);
        assert_eq!(kind(Some("NotFound"), Some(404)), Kind::NotFound);
        assert_eq!(kind(Some("Weird"), Some(503)), Kind::Transient);
        assert_eq!(kind(Some("Weird"), Some(429)), Kind::Transient);
        assert_eq!(kind(Some("Weird"), Some(400)), Kind::Rejected);
        assert_eq!(kind(None, None), Kind::Transient);
    }

    #[test]
    fn the_sdks_throttling_and_transient_codes_are_ours() {
        assert_eq!(
            kind(Some("RequestLimitExceeded"), Some(400)),
            Kind::Throttled
        );
        assert_eq!(kind(Some("SlowDown"), Some(503)), Kind::Throttled);
        assert_eq!(kind(Some("RequestTimeout"), Some(400)), Kind::Transient);
        assert_eq!(
            kind(Some("RequestTimeoutException"), Some(400)),
            Kind::Transient
        );
        for status in [500, 502, 503, 504] {
            assert_eq!(kind(None, Some(status)), Kind::Transient, "{status}");
        }
    }

    #[test]
    fn a_stack_that_does_not_exist_is_not_found() {
        let missing = AwsError::answered(
            Some("ValidationError"),
            "Stack with id iamwatchd does not exist",
            Some(400),
        );
        assert_eq!(missing.kind, Kind::NotFound);
        let other = AwsError::answered(Some("ValidationError"), "bad template", Some(400));
        assert_eq!(other.kind, Kind::Rejected);
        assert_eq!(other.to_string(), "ValidationError: bad template");
    }

    #[test]
    fn only_throttling_transient_and_unreachable_are_worth_retrying() {
        assert!(Kind::Throttled.is_retryable());
        assert!(Kind::Transient.is_retryable());
        assert!(Kind::Unreachable.is_retryable());
        for permanent in [
            Kind::Credentials,
            Kind::Denied,
            Kind::NotFound,
            Kind::Rejected,
        ] {
            assert!(!permanent.is_retryable(), "{permanent:?}");
        }
    }
}
