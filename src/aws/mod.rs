//! The one place that sets up AWS clients: region, profile and credentials
//! from the standard chain (flags, environment, config files, SSO),
//! `AWS_ENDPOINT_URL` (with path-style S3 when an endpoint is overridden, as a
//! loopback endpoint needs), and standard retries with backoff on throttling.

pub(crate) mod apigateway;
pub(crate) mod cloudformation;
mod debug;
mod endpoint_host;
pub(crate) mod error;
pub(crate) mod lambda;
pub(crate) mod sfn;

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};

use crate::printer::Printer;

/// Attempts per call (sam's `{max_attempts: 10, mode: standard}`), unless the
/// user set `AWS_MAX_ATTEMPTS` or `AWS_RETRY_MODE`.
const MAX_ATTEMPTS: u32 = 10;

/// Why no client could be set up.
#[derive(Debug, thiserror::Error)]
pub(crate) enum AwsError {
    /// No region from the flag, the environment or the profile.
    #[error(
        "Unable to resolve a region. Please provide a region via the --region parameter or by the AWS_DEFAULT_REGION environment variable."
    )]
    NoRegion,
}

/// Where to find the account and region (the `--region` and `--profile` flags).
#[derive(Debug, Clone, Default)]
pub(crate) struct AwsOptions {
    /// `--region`.
    pub(crate) region: Option<String>,
    /// `--profile`.
    pub(crate) profile: Option<String>,
    /// Use sam's retry settings (the user set none of their own).
    pub(crate) default_retries: bool,
    /// How long calls may take.
    pub(crate) timeouts: Timeouts,
}

/// Time limits of every call, so that an endpoint that never answers makes
/// a clear error instead of a hang.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Timeouts {
    /// Opening a connection.
    pub(crate) connect: Duration,
    /// Waiting for an answer, per attempt.
    pub(crate) read: Duration,
    /// One call, retries included.
    pub(crate) operation: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts { connect: Duration::from_secs(5), read: Duration::from_secs(30), operation: Duration::from_secs(90) }
    }
}

impl Timeouts {
    /// The SDK's form.
    fn config(self) -> TimeoutConfig {
        TimeoutConfig::builder()
            .connect_timeout(self.connect)
            .read_timeout(self.read)
            .operation_timeout(self.operation)
            .build()
    }
}

/// Limits for calls that send a package (up to 50 MiB inline, more to S3),
/// and for streams that stay open while the user watches (`StartLiveTail`):
/// only the connection is timed (as configured), the body may take long on a
/// slow uplink. Unset limits are taken from the client's configuration, so
/// the others must be disabled, not left out.
pub(crate) fn long_call_timeouts() -> TimeoutConfig {
    TimeoutConfig::builder()
        .disable_read_timeout()
        .disable_operation_timeout()
        .disable_operation_attempt_timeout()
        .build()
}

/// Shared configuration from which every service client is built.
#[derive(Debug, Clone)]
pub(crate) struct Aws {
    config: SdkConfig,
    /// `--debug`: every call is logged.
    call_log: Option<debug::CallLog>,
    /// With an endpoint override: no host prefixes before its host.
    keep_host: Option<endpoint_host::KeepEndpointHost>,
}

/// A client of one service from the shared configuration, with the call
/// log when `--debug` asks for it.
macro_rules! client {
    ($(#[$doc:meta])* $name:ident, $sdk:ident) => {
        $(#[$doc])*
        pub(crate) fn $name(&self) -> $sdk::Client {
            let mut config = $sdk::config::Builder::from(&self.config);
            if let Some(log) = &self.call_log {
                config = config.interceptor(log.clone());
            }
            if let Some(keep) = &self.keep_host {
                config = config.interceptor(keep.clone());
            }
            $sdk::Client::from_conf(config.build())
        }
    };
}

impl Aws {
    /// Loads the configuration from the standard chain; with `--debug`,
    /// every call is logged to `printer`.
    pub(crate) async fn load(options: &AwsOptions, printer: &Printer) -> Result<Self, AwsError> {
        let mut loader = aws_config::defaults(BehaviorVersion::latest());
        if let Some(region) = options.region.clone() {
            loader = loader.region(Region::new(region));
        }
        if let Some(profile) = &options.profile {
            loader = loader.profile_name(profile);
        }
        if options.default_retries {
            loader = loader.retry_config(RetryConfig::standard().with_max_attempts(MAX_ATTEMPTS));
        }
        loader = loader.timeout_config(options.timeouts.config());
        let config = loader.load().await;
        if config.region().is_none() {
            return Err(AwsError::NoRegion);
        }
        let call_log = printer.debugging().then(|| debug::CallLog::new(printer));
        let keep_host = config.endpoint_url().map(endpoint_host::KeepEndpointHost::new);
        Ok(Aws { config, call_log, keep_host })
    }

    /// The region in use.
    pub(crate) fn region(&self) -> &str {
        self.config.region().map(Region::as_ref).unwrap_or_default()
    }

    /// The endpoint override (`AWS_ENDPOINT_URL`), if any.
    pub(crate) fn endpoint_url(&self) -> Option<&str> {
        self.config.endpoint_url()
    }

    /// S3, path-style when the endpoint is overridden: virtual-host buckets
    /// do not resolve on loopback or most S3-compatible endpoints.
    pub(crate) fn s3(&self) -> aws_sdk_s3::Client {
        let mut config =
            aws_sdk_s3::config::Builder::from(&self.config).force_path_style(self.endpoint_url().is_some());
        if let Some(log) = &self.call_log {
            config = config.interceptor(log.clone());
        }
        aws_sdk_s3::Client::from_conf(config.build())
    }

    client!(
        /// CloudFormation.
        cloudformation, aws_sdk_cloudformation
    );
    client!(
        /// Lambda.
        lambda, aws_sdk_lambda
    );
    client!(
        /// API Gateway (REST APIs).
        apigateway, aws_sdk_apigateway
    );
    client!(
        /// API Gateway v2 (HTTP APIs).
        apigatewayv2, aws_sdk_apigatewayv2
    );
    client!(
        /// Step Functions.
        sfn, aws_sdk_sfn
    );
    client!(
        /// CloudWatch Logs.
        logs, aws_sdk_cloudwatchlogs
    );
    client!(
        /// X-Ray.
        xray, aws_sdk_xray
    );
    client!(
        /// STS.
        sts, aws_sdk_sts
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a long call gets once its override is laid over the client's
    /// configuration: the configured connect limit, and no other.
    #[test]
    fn long_calls_keep_only_the_connect_limit() {
        let configured = Timeouts { connect: Duration::from_secs(7), ..Timeouts::default() };
        let mut long = long_call_timeouts();
        long.take_defaults_from(&configured.config());
        assert_eq!(long.connect_timeout(), Some(Duration::from_secs(7)));
        assert_eq!(
            (long.read_timeout(), long.operation_timeout(), long.operation_attempt_timeout()),
            (None, None, None)
        );
    }
}
