//! An endpoint override is used as given. AWS's model puts a prefix before
//! the host of some operations (`streaming-` for StartLiveTail, `sync-` for
//! Step Functions' StartSyncExecution), which turns a loopback or emulator
//! endpoint into a host that does not exist (`streaming-127.0.0.1`).
//! botocore and the Ruby SDK let users turn the prefix off
//! (`AWS_DISABLE_HOST_PREFIX_INJECTION`); the Rust SDK does not, so this
//! interceptor takes it off again before the request is signed.

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextMut;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;

/// Sends every request to the overridden endpoint's own host.
#[derive(Debug, Clone)]
pub(crate) struct KeepEndpointHost {
    /// `host[:port]` of the endpoint override.
    host: String,
}

impl KeepEndpointHost {
    /// For the endpoint override `url` (`http://127.0.0.1:4566`).
    pub(crate) fn new(url: &str) -> KeepEndpointHost {
        let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
        KeepEndpointHost { host: rest.split('/').next().unwrap_or(rest).to_string() }
    }

    /// `uri` without a host prefix before the endpoint's host, if it has one.
    fn unprefixed(&self, uri: &str) -> Option<String> {
        let (scheme, rest) = uri.split_once("://")?;
        let prefix = &rest[..rest.find(&self.host)?];
        (!prefix.is_empty() && prefix.ends_with('-') && !prefix.contains(['/', '.', ':']))
            .then(|| format!("{scheme}://{}", &rest[prefix.len()..]))
    }
}

impl Intercept for KeepEndpointHost {
    fn name(&self) -> &'static str {
        "accel-keep-endpoint-host"
    }

    fn modify_before_signing(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let request = context.request_mut();
        if let Some(uri) = self.unprefixed(request.uri()) {
            request.set_uri(uri)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_prefix_before_the_endpoint_host_is_taken_off() {
        let keep = KeepEndpointHost::new("http://127.0.0.1:4566");
        assert_eq!(keep.unprefixed("http://streaming-127.0.0.1:4566/").as_deref(), Some("http://127.0.0.1:4566/"));
        assert_eq!(keep.unprefixed("http://sync-127.0.0.1:4566/x?y=1").as_deref(), Some("http://127.0.0.1:4566/x?y=1"));
        assert_eq!(keep.unprefixed("http://127.0.0.1:4566/streaming-127.0.0.1:4566"), None);
        assert_eq!(keep.unprefixed("http://other.host/"), None);
        let named = KeepEndpointHost::new("https://localhost.localstack.cloud:4566");
        assert_eq!(
            named.unprefixed("https://streaming-localhost.localstack.cloud:4566/").as_deref(),
            Some("https://localhost.localstack.cloud:4566/")
        );
    }
}
