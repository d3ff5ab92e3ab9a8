//! The one place that sets up AWS clients: region, profile and credentials
//! from the standard chain (flags, environment, config files, SSO),
//! `AWS_ENDPOINT_URL` (with path-style S3 when an endpoint is overridden, as a
//! loopback endpoint needs), and standard retries with backoff on throttling.

use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};

/// Attempts per call (sam's `{max_attempts: 10, mode: standard}`), unless the
/// user set `AWS_MAX_ATTEMPTS` or `AWS_RETRY_MODE`.
const MAX_ATTEMPTS: u32 = 10;

/// Why no client could be set up.
#[derive(Debug, thiserror::Error)]
pub enum AwsError {
    /// No region from the flag, the environment or the profile.
    #[error(
        "Unable to resolve a region. Please provide a region via the --region parameter or by the AWS_DEFAULT_REGION environment variable."
    )]
    NoRegion,
}

/// Where to find the account and region (the `--region` and `--profile` flags).
#[derive(Debug, Clone, Default)]
pub struct AwsOptions {
    /// `--region`.
    pub region: Option<String>,
    /// `--profile`.
    pub profile: Option<String>,
}

/// Shared configuration from which every service client is built.
#[derive(Debug, Clone)]
pub struct Aws {
    config: SdkConfig,
}

impl Aws {
    /// Loads the configuration from the standard chain.
    pub async fn load(options: &AwsOptions) -> Result<Self, AwsError> {
        let mut loader = aws_config::defaults(BehaviorVersion::latest());
        // sam (boto3) honours AWS_DEFAULT_REGION, which the Rust SDK does not read.
        let region = options
            .region
            .clone()
            .or_else(|| std::env::var("AWS_REGION").ok().filter(|r| !r.is_empty()))
            .or_else(|| std::env::var("AWS_DEFAULT_REGION").ok().filter(|r| !r.is_empty()));
        if let Some(region) = region {
            loader = loader.region(Region::new(region));
        }
        if let Some(profile) = &options.profile {
            loader = loader.profile_name(profile);
        }
        if std::env::var_os("AWS_MAX_ATTEMPTS").is_none() && std::env::var_os("AWS_RETRY_MODE").is_none() {
            loader = loader.retry_config(RetryConfig::standard().with_max_attempts(MAX_ATTEMPTS));
        }
        Self::from_config(loader.load().await)
    }

    /// Wraps an existing configuration (tests build one by hand).
    pub fn from_config(config: SdkConfig) -> Result<Self, AwsError> {
        if config.region().is_none() {
            return Err(AwsError::NoRegion);
        }
        Ok(Aws { config })
    }

    /// The region in use.
    pub fn region(&self) -> &str {
        self.config.region().map(Region::as_ref).unwrap_or_default()
    }

    /// The endpoint override (`AWS_ENDPOINT_URL`), if any.
    pub fn endpoint_url(&self) -> Option<&str> {
        self.config.endpoint_url()
    }

    /// The shared SDK configuration.
    pub fn config(&self) -> &SdkConfig {
        &self.config
    }

    /// S3, path-style when the endpoint is overridden: virtual-host buckets
    /// do not resolve on loopback or most S3-compatible endpoints.
    pub fn s3(&self) -> aws_sdk_s3::Client {
        let config =
            aws_sdk_s3::config::Builder::from(&self.config).force_path_style(self.endpoint_url().is_some()).build();
        aws_sdk_s3::Client::from_conf(config)
    }

    /// CloudFormation.
    pub fn cloudformation(&self) -> aws_sdk_cloudformation::Client {
        aws_sdk_cloudformation::Client::new(&self.config)
    }

    /// Lambda.
    pub fn lambda(&self) -> aws_sdk_lambda::Client {
        aws_sdk_lambda::Client::new(&self.config)
    }

    /// API Gateway (REST APIs).
    pub fn apigateway(&self) -> aws_sdk_apigateway::Client {
        aws_sdk_apigateway::Client::new(&self.config)
    }

    /// API Gateway v2 (HTTP APIs).
    pub fn apigatewayv2(&self) -> aws_sdk_apigatewayv2::Client {
        aws_sdk_apigatewayv2::Client::new(&self.config)
    }

    /// Step Functions.
    pub fn sfn(&self) -> aws_sdk_sfn::Client {
        aws_sdk_sfn::Client::new(&self.config)
    }

    /// CloudWatch Logs.
    pub fn logs(&self) -> aws_sdk_cloudwatchlogs::Client {
        aws_sdk_cloudwatchlogs::Client::new(&self.config)
    }

    /// X-Ray.
    pub fn xray(&self) -> aws_sdk_xray::Client {
        aws_sdk_xray::Client::new(&self.config)
    }

    /// STS.
    pub fn sts(&self) -> aws_sdk_sts::Client {
        aws_sdk_sts::Client::new(&self.config)
    }
}

/// sam's wording for a failed call: "An error occurred (Code) when calling
/// the Operation operation: message". Transport errors keep their context.
pub fn call_error<E>(
    operation: &str,
    error: &aws_sdk_lambda::error::SdkError<E, aws_sdk_lambda::config::http::HttpResponse>,
) -> String
where
    E: aws_sdk_lambda::error::ProvideErrorMetadata + std::error::Error + 'static,
{
    use aws_sdk_lambda::error::ProvideErrorMetadata;
    match (error.code(), error.message()) {
        (Some(code), Some(message)) => {
            format!("An error occurred ({code}) when calling the {operation} operation: {message}")
        }
        _ => match error {
            aws_sdk_lambda::error::SdkError::ServiceError(e) => {
                format!("{operation}: the service answered HTTP {}", e.raw().status().as_u16())
            }
            other => format!("{operation}: {}", aws_sdk_lambda::error::DisplayErrorContext(other)),
        },
    }
}
