//! The one place that sets up AWS clients: region, profile and credentials
//! from the standard chain (flags, environment, config files, SSO),
//! `AWS_ENDPOINT_URL` (with path-style S3 when an endpoint is overridden, as a
//! loopback endpoint needs), and standard retries with backoff on throttling.

pub(crate) mod apigateway;
pub(crate) mod cloudformation;
pub(crate) mod error;
pub(crate) mod lambda;
pub(crate) mod sfn;

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};

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
/// only the connection is timed, the body may take long on a slow uplink.
pub(crate) fn long_call_timeouts() -> TimeoutConfig {
    TimeoutConfig::builder().connect_timeout(Timeouts::default().connect).build()
}

/// Shared configuration from which every service client is built.
#[derive(Debug, Clone)]
pub(crate) struct Aws {
    config: SdkConfig,
}

impl Aws {
    /// Loads the configuration from the standard chain.
    pub(crate) async fn load(options: &AwsOptions) -> Result<Self, AwsError> {
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
        loader = loader.timeout_config(options.timeouts.config());
        let config = loader.load().await;
        if config.region().is_none() {
            return Err(AwsError::NoRegion);
        }
        Ok(Aws { config })
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
        let config =
            aws_sdk_s3::config::Builder::from(&self.config).force_path_style(self.endpoint_url().is_some()).build();
        aws_sdk_s3::Client::from_conf(config)
    }

    /// CloudFormation.
    pub(crate) fn cloudformation(&self) -> aws_sdk_cloudformation::Client {
        aws_sdk_cloudformation::Client::new(&self.config)
    }

    /// Lambda.
    pub(crate) fn lambda(&self) -> aws_sdk_lambda::Client {
        aws_sdk_lambda::Client::new(&self.config)
    }

    /// API Gateway (REST APIs).
    pub(crate) fn apigateway(&self) -> aws_sdk_apigateway::Client {
        aws_sdk_apigateway::Client::new(&self.config)
    }

    /// API Gateway v2 (HTTP APIs).
    pub(crate) fn apigatewayv2(&self) -> aws_sdk_apigatewayv2::Client {
        aws_sdk_apigatewayv2::Client::new(&self.config)
    }

    /// Step Functions.
    pub(crate) fn sfn(&self) -> aws_sdk_sfn::Client {
        aws_sdk_sfn::Client::new(&self.config)
    }

    /// CloudWatch Logs.
    pub(crate) fn logs(&self) -> aws_sdk_cloudwatchlogs::Client {
        aws_sdk_cloudwatchlogs::Client::new(&self.config)
    }

    /// X-Ray.
    pub(crate) fn xray(&self) -> aws_sdk_xray::Client {
        aws_sdk_xray::Client::new(&self.config)
    }

    /// STS.
    pub(crate) fn sts(&self) -> aws_sdk_sts::Client {
        aws_sdk_sts::Client::new(&self.config)
    }
}
