//! A failed AWS call as a value: which operation, the service's error code
//! and message, and the SDK error as its source. Every branch on an AWS
//! outcome goes through one of the predicates here, so the knowledge of how
//! each service spells "missing", "throttled" or "conflict" lives in one place.

use aws_sdk_lambda::config::http::HttpResponse;
use aws_sdk_lambda::error::{ProvideErrorMetadata, SdkError};

/// Error codes AWS services use for throttling (the SDK's own retry list,
/// plus the ones Lambda, CloudWatch Logs and API Gateway use).
const THROTTLING_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "TransactionInProgressException",
    "RequestLimitExceeded",
    "BandwidthLimitExceeded",
    "RequestThrottled",
    "SlowDown",
    "PriorRequestNotComplete",
    "EC2ThrottledException",
];

/// How a call failed before or after reaching the service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    /// The service answered with an error.
    Service,
    /// The call timed out.
    Timeout,
    /// The request never got an answer (connection refused, reset …).
    Transport,
    /// The answer could not be read, or the request could not be built.
    Other,
}

/// One failed call (boxed: errors travel far and should stay small).
#[derive(Debug, thiserror::Error)]
#[error("{}", self.0.describe())]
pub(crate) struct CallError(Box<Details>);

/// What is known of a failed call.
#[derive(Debug)]
pub(crate) struct Details {
    /// The service, e.g. `Lambda`.
    pub(crate) service: &'static str,
    /// The API operation, e.g. `UpdateFunctionCode`.
    pub(crate) operation: &'static str,
    /// The service's error code, e.g. `ResourceConflictException`.
    pub(crate) code: Option<String>,
    /// The service's message.
    pub(crate) message: Option<String>,
    /// The HTTP status of the answer, when there was one.
    pub(crate) status: Option<u16>,
    /// Where it failed.
    pub(crate) failure: Failure,
    /// The SDK's error.
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl std::ops::Deref for CallError {
    type Target = Details;

    fn deref(&self) -> &Details {
        &self.0
    }
}

impl CallError {
    /// Wraps an SDK error of `service`'s `operation`.
    pub(crate) fn new<E>(service: &'static str, operation: &'static str, error: SdkError<E, HttpResponse>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let failure = match &error {
            SdkError::ServiceError(_) => Failure::Service,
            SdkError::TimeoutError(_) => Failure::Timeout,
            SdkError::DispatchFailure(_) => Failure::Transport,
            _ => Failure::Other,
        };
        CallError(Box::new(Details {
            service,
            operation,
            code: error.code().map(str::to_string),
            message: error.message().map(str::to_string),
            status: error.raw_response().map(|r| r.status().as_u16()),
            failure,
            source: Some(Box::new(error)),
        }))
    }
}

impl Details {
    /// sam's wording when the service answered: "An error occurred (Code)
    /// when calling the Operation operation: message"; otherwise the
    /// service, the operation and what went wrong, in one line.
    fn describe(&self) -> String {
        let (service, operation) = (self.service, self.operation);
        match (&self.code, &self.message, self.failure) {
            (Some(code), Some(message), _) => {
                format!("An error occurred ({code}) when calling the {operation} operation: {message}")
            }
            (Some(code), None, _) => format!("An error occurred ({code}) when calling the {operation} operation"),
            (None, _, Failure::Service) => {
                format!("{service} {operation}: the service answered HTTP {}", self.status.unwrap_or_default())
            }
            (None, _, Failure::Timeout) => format!("{service} {operation}: no answer in time (the call timed out)"),
            (None, _, _) => match &self.source {
                Some(source) => format!("{service} {operation}: {}", chain(source.as_ref())),
                None => format!("{service} {operation} failed"),
            },
        }
    }

    /// The call never got an answer: the network or the endpoint is down.
    pub(crate) fn is_unreachable(&self) -> bool {
        matches!(self.failure, Failure::Timeout | Failure::Transport)
    }

    fn code_is(&self, codes: &[&str]) -> bool {
        self.code.as_deref().is_some_and(|code| codes.contains(&code))
    }

    /// CloudFormation says a stack is missing only in a `ValidationError`'s
    /// message (it has no dedicated code), so that message is read here.
    pub(crate) fn is_stack_missing(&self) -> bool {
        self.code_is(&["ValidationError"]) && self.message.as_deref().is_some_and(|m| m.contains("does not exist"))
    }

    /// CloudFormation's "No updates are to be performed", again a
    /// `ValidationError` told apart by its message only.
    pub(crate) fn is_no_updates(&self) -> bool {
        self.code_is(&["ValidationError"])
            && self.message.as_deref().is_some_and(|m| m.contains("No updates are to be performed"))
    }

    /// CloudFormation refuses an operation on a stack busy with another
    /// (`... is in UPDATE_IN_PROGRESS state and can not be updated`), again
    /// told only in a `ValidationError`'s message.
    pub(crate) fn is_in_progress(&self) -> bool {
        self.code_is(&["ValidationError"]) && self.message.as_deref().is_some_and(|m| m.contains("_IN_PROGRESS state"))
    }

    /// The service failed on its side (a 5xx answer): trying again may work.
    pub(crate) fn is_server_error(&self) -> bool {
        self.status.is_some_and(|status| status >= 500)
    }

    /// A conditional request's condition did not hold (S3's 412
    /// `PreconditionFailed`: `If-None-Match: *` on a key that exists).
    pub(crate) fn is_precondition_failed(&self) -> bool {
        self.code_is(&["PreconditionFailed"]) || self.status == Some(412)
    }

    /// The service asked us to slow down.
    pub(crate) fn is_throttling(&self) -> bool {
        self.code_is(THROTTLING_CODES) || self.status == Some(429)
    }

    /// A quota of the account refused the call, and trying again at once
    /// will not help: CloudWatch Logs' `LimitExceededException` (StartLiveTail
    /// past the account's concurrent live tail sessions) or a
    /// `ServiceQuotaExceededException`.
    pub(crate) fn is_quota_exceeded(&self) -> bool {
        self.code_is(&["LimitExceededException", "ServiceQuotaExceededException"])
    }

    /// Another update of the same resource is in progress (Lambda's
    /// `ResourceConflictException`, API Gateway's `ConflictException`).
    pub(crate) fn is_conflict(&self) -> bool {
        self.code_is(&["ResourceConflictException", "ConflictException"]) || self.status == Some(409)
    }

    /// The thing asked for is not there (S3's `NotFound`/`NoSuchKey`,
    /// `ResourceNotFoundException`, or a bare 404).
    pub(crate) fn is_not_found(&self) -> bool {
        self.code_is(&["NotFound", "NoSuchKey", "ResourceNotFoundException", "NotFoundException"])
            || self.status == Some(404)
    }

    /// The thing to create is already there.
    pub(crate) fn is_already_exists(&self) -> bool {
        self.code_is(&["AlreadyExistsException", "ResourceAlreadyExistsException"])
    }
}

/// An error and its causes, each once, joined by `: ` — what users read,
/// rather than the SDK's `Debug` dump.
fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = vec![error.to_string()];
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = cause.source();
    }
    parts.join(": ")
}

/// `.call("Service", "Operation")` on an SDK result turns its error into a [`CallError`].
pub(crate) trait CallResult<T> {
    /// Names the service and operation of a failed call.
    fn call(self, service: &'static str, operation: &'static str) -> Result<T, CallError>;
}

impl<T, E> CallResult<T> for Result<T, SdkError<E, HttpResponse>>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    fn call(self, service: &'static str, operation: &'static str) -> Result<T, CallError> {
        self.map_err(|e| CallError::new(service, operation, e))
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_cloudformation::error::ErrorMetadata;
    use aws_sdk_cloudformation::operation::describe_stacks::DescribeStacksError;
    use aws_smithy_types::body::SdkBody;

    use super::*;

    /// A real SDK error, as the SDK builds it from an HTTP answer.
    fn answer(status: u16, code: &str, message: &str) -> CallError {
        let meta = ErrorMetadata::builder().code(code).message(message).build();
        let raw = HttpResponse::new(status.try_into().unwrap(), SdkBody::empty());
        CallError::new(
            "CloudFormation",
            "DescribeStacks",
            SdkError::service_error(DescribeStacksError::generic(meta), raw),
        )
    }

    #[test]
    fn a_missing_stack() {
        let e = answer(400, "ValidationError", "Stack with id blog does not exist");
        assert!(e.is_stack_missing());
        assert!(!e.is_no_updates() && !e.is_throttling() && !e.is_conflict() && !e.is_already_exists());
        assert_eq!(
            e.to_string(),
            "An error occurred (ValidationError) when calling the DescribeStacks operation: Stack with id blog does not exist"
        );
    }

    #[test]
    fn no_updates() {
        let e = answer(400, "ValidationError", "No updates are to be performed.");
        assert!(e.is_no_updates());
        assert!(!e.is_stack_missing());
    }

    #[test]
    fn throttling_by_code_or_status() {
        // CloudFormation's (query XML), CloudWatch Logs' (JSON 1.1), API Gateway's and Lambda's (REST JSON).
        assert!(answer(400, "Throttling", "Rate exceeded").is_throttling());
        assert!(answer(400, "ThrottlingException", "Rate exceeded").is_throttling());
        assert!(answer(429, "TooManyRequestsException", "slow down").is_throttling());
        assert!(answer(429, "Whatever", "").is_throttling());
        assert!(!answer(400, "ValidationError", "Rate exceeded").is_throttling());
    }

    #[test]
    fn quotas_by_code_not_throttling() {
        let e = answer(400, "LimitExceededException", "Rate exceeded");
        assert!(e.is_quota_exceeded() && !e.is_throttling());
        assert!(answer(402, "ServiceQuotaExceededException", "").is_quota_exceeded());
        assert!(!answer(400, "ThrottlingException", "Rate exceeded").is_quota_exceeded());
        assert!(!answer(400, "ValidationException", "limit exceeded").is_quota_exceeded());
    }

    #[test]
    fn conflicts_and_existing_things() {
        assert!(answer(409, "ResourceConflictException", "update in progress").is_conflict());
        assert!(answer(409, "ConflictException", "").is_conflict());
        assert!(!answer(400, "ValidationError", "conflict").is_conflict());
        assert!(answer(400, "AlreadyExistsException", "Stack [x] already exists").is_already_exists());
        assert!(!answer(400, "ValidationError", "AlreadyExists").is_already_exists());
    }

    #[test]
    fn transport_failures_read_as_text() {
        let error: SdkError<DescribeStacksError, HttpResponse> =
            SdkError::dispatch_failure(aws_smithy_runtime_api::client::result::ConnectorError::io(
                std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "connection refused").into(),
            ));
        let e = CallError::new("CloudFormation", "DescribeStacks", error);
        assert_eq!(e.failure, Failure::Transport);
        assert!(e.is_unreachable());
        assert_eq!(e.to_string(), "CloudFormation DescribeStacks: dispatch failure: io error: connection refused");
        assert!(!e.to_string().contains("DispatchFailure {"), "no Debug dump: {e}");
    }
}
