//! Lambda calls of a code sync: a function's code (compare, update, wait,
//! publish to its alias), a layer's versions, and re-pointing functions to a
//! new layer version.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_lambda::Client;
use aws_sdk_lambda::types::{
    ApplicationLogLevel, Architecture, Environment, EphemeralStorage, LastUpdateStatus, LayerVersionContentInput,
    LogFormat, LoggingConfig, Runtime, State, SystemLogLevel, TracingConfig, TracingMode,
};
use base64::Engine;

use super::error::{CallError, CallResult};

/// How long a function update may stay `InProgress`.
const UPDATE_TIMEOUT: Duration = Duration::from_secs(300);

/// Why a Lambda step failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LambdaError {
    /// A call failed.
    #[error(transparent)]
    Call(#[from] CallError),
    /// Lambda reported `LastUpdateStatus: Failed`.
    #[error("the update of {function} failed: {reason}")]
    UpdateFailed {
        /// Function name.
        function: String,
        /// `LastUpdateStatusReason`.
        reason: String,
    },
    /// The update did not finish in time.
    #[error("the update of {function} was still in progress after {} s", UPDATE_TIMEOUT.as_secs())]
    StillInProgress {
        /// Function name.
        function: String,
    },
    /// A request accel could not build.
    #[error("invalid request: {0}")]
    Invalid(String),
    /// A concurrent re-pointing task panicked or was cancelled.
    #[error("a layer update task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// `CodeSha256` as hex (Lambda reports base64).
fn base64_to_hex(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.decode(text).map(hex::encode).unwrap_or_default()
}

/// The deployed code's SHA-256 (hex) of function `name`.
pub(crate) async fn code_sha256(lambda: &Client, name: &str) -> Result<Option<String>, CallError> {
    let deployed = lambda.get_function().function_name(name).send().await.call("Lambda", "GetFunction")?;
    Ok(deployed.configuration().and_then(|c| c.code_sha256()).map(base64_to_hex))
}

/// Sends `zip` as the function's code and waits until Lambda has applied it.
pub(crate) async fn update_code(lambda: &Client, name: &str, zip: Vec<u8>) -> Result<(), LambdaError> {
    let zip = aws_sdk_lambda::primitives::Blob::new(zip);
    let long = || aws_sdk_lambda::config::Builder::default().timeout_config(super::long_call_timeouts());
    when_idle(lambda, name, || {
        let update = lambda.update_function_code().function_name(name).zip_file(zip.clone());
        async { update.customize().config_override(long()).send().await.call("Lambda", "UpdateFunctionCode") }
    })
    .await?;
    wait_for_update(lambda, name).await
}

/// A configuration change of one function: every field set is sent in one
/// `UpdateFunctionConfiguration`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct FunctionConfig {
    /// `Environment.Variables` (all of them: Lambda replaces the map).
    pub(crate) environment: Option<BTreeMap<String, String>>,
    /// `Description`.
    pub(crate) description: Option<String>,
    /// `MemorySize` (MB).
    pub(crate) memory_size: Option<i32>,
    /// `Timeout` (seconds).
    pub(crate) timeout: Option<i32>,
    /// `Handler`.
    pub(crate) handler: Option<String>,
    /// `Runtime`.
    pub(crate) runtime: Option<String>,
    /// `Layers`: version ARNs, in order.
    pub(crate) layers: Option<Vec<String>>,
    /// `EphemeralStorage.Size` (MB).
    pub(crate) ephemeral_storage: Option<i32>,
    /// `TracingConfig.Mode`: `Active` or `PassThrough`.
    pub(crate) tracing: Option<String>,
    /// `LoggingConfig`.
    pub(crate) logging: Option<Logging>,
}

/// A function's `LoggingConfig`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Logging {
    /// `Text` or `JSON`.
    pub(crate) log_format: String,
    /// Application log level (JSON only).
    pub(crate) application_log_level: Option<String>,
    /// System log level (JSON only).
    pub(crate) system_log_level: Option<String>,
    /// The log group.
    pub(crate) log_group: Option<String>,
}

/// Applies `config` to function `name` and waits until Lambda has. New
/// `layers` keep the function's current version of `keep_layer` (its
/// dependency layer, which the template does not name), last.
pub(crate) async fn update_config(
    lambda: &Client,
    name: &str,
    config: &FunctionConfig,
    keep_layer: Option<&str>,
) -> Result<(), LambdaError> {
    let mut layers = config.layers.clone();
    if let (Some(layers), Some(keep)) = (layers.as_mut(), keep_layer) {
        let current = lambda.get_function().function_name(name).send().await.call("Lambda", "GetFunction")?;
        let current = current.configuration().map(|c| c.layers()).unwrap_or_default();
        let prefix = format!("{keep}:");
        layers.extend(current.iter().filter_map(|l| l.arn()).filter(|a| a.starts_with(&prefix)).map(str::to_string));
    }
    let environment = config
        .environment
        .as_ref()
        .map(|vars| Environment::builder().set_variables(Some(vars.clone().into_iter().collect())).build());
    let logging = config.logging.as_ref().map(|l| {
        LoggingConfig::builder()
            .log_format(LogFormat::from(l.log_format.as_str()))
            .set_application_log_level(l.application_log_level.as_deref().map(ApplicationLogLevel::from))
            .set_system_log_level(l.system_log_level.as_deref().map(SystemLogLevel::from))
            .set_log_group(l.log_group.clone())
            .build()
    });
    let ephemeral = config.ephemeral_storage.map(|size| EphemeralStorage::builder().size(size).build()).transpose();
    let ephemeral = ephemeral.map_err(|e| LambdaError::Invalid(e.to_string()))?;
    when_idle(lambda, name, || {
        let update = lambda
            .update_function_configuration()
            .function_name(name)
            .set_environment(environment.clone())
            .set_description(config.description.clone())
            .set_memory_size(config.memory_size)
            .set_timeout(config.timeout)
            .set_handler(config.handler.clone())
            .set_runtime(config.runtime.as_deref().map(Runtime::from))
            .set_layers(layers.clone())
            .set_ephemeral_storage(ephemeral.clone())
            .set_tracing_config(
                config.tracing.as_deref().map(|m| TracingConfig::builder().mode(TracingMode::from(m)).build()),
            )
            .set_logging_config(logging.clone());
        async { update.send().await.call("Lambda", "UpdateFunctionConfiguration") }
    })
    .await?;
    wait_for_update(lambda, name).await
}

/// Publishes a version and points `alias` at it (`AutoPublishAlias`).
pub(crate) async fn publish_to_alias(lambda: &Client, name: &str, alias: &str) -> Result<(), LambdaError> {
    let version = when_idle(lambda, name, || async {
        lambda.publish_version().function_name(name).send().await.call("Lambda", "PublishVersion")
    })
    .await?;
    let number = version.version().unwrap_or("$LATEST");
    let update = lambda.update_alias().function_name(name).name(alias).function_version(number);
    update.send().await.call("Lambda", "UpdateAlias")?;
    Ok(())
}

/// Runs `call`, a change to function `name`; while Lambda answers that the
/// function is busy with another change (`ResourceConflictException`: an
/// update in progress, or still `Pending` after creation), waits for that
/// change to end and tries again, within [`UPDATE_TIMEOUT`].
async fn when_idle<T, F, Fut>(lambda: &Client, name: &str, call: F) -> Result<T, LambdaError>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<T, CallError>>,
{
    let started = Instant::now();
    let mut delay = Duration::from_millis(100);
    loop {
        match call().await {
            Err(e) if e.is_conflict() && started.elapsed() < UPDATE_TIMEOUT => {
                wait_for_update(lambda, name).await?;
                // A conflict that is not an update in progress (a change
                // racing ours) ends no sooner for asking again at once.
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(1));
            }
            result => return Ok(result?),
        }
    }
}

/// The latest version of layer `name` and its content's SHA-256 (hex).
pub(crate) async fn latest_layer_version(lambda: &Client, name: &str) -> Result<Option<(i64, String)>, CallError> {
    let versions = lambda.list_layer_versions().layer_name(name).send().await.call("Lambda", "ListLayerVersions")?;
    let Some(latest) = versions.layer_versions().first().map(|v| v.version()) else { return Ok(None) };
    let current = lambda
        .get_layer_version()
        .layer_name(name)
        .version_number(latest)
        .send()
        .await
        .call("Lambda", "GetLayerVersion")?;
    let sha = current.content().and_then(|c| c.code_sha256()).map(base64_to_hex).unwrap_or_default();
    Ok(Some((latest, sha)))
}

/// What a new layer version keeps of the template.
#[derive(Debug, Clone, Copy)]
pub(crate) struct NewLayerVersion<'a> {
    /// Layer name.
    pub(crate) name: &'a str,
    /// Compatible runtimes.
    pub(crate) runtimes: &'a [String],
    /// Compatible architectures.
    pub(crate) architectures: &'a [String],
    /// Description.
    pub(crate) description: Option<&'a str>,
    /// Licence.
    pub(crate) license: Option<&'a str>,
}

/// Publishes a version of a layer; returns its ARN.
pub(crate) async fn publish_layer_version(
    lambda: &Client,
    layer: NewLayerVersion<'_>,
    zip: Vec<u8>,
) -> Result<String, CallError> {
    let content = LayerVersionContentInput::builder().zip_file(zip.into()).build();
    let long = aws_sdk_lambda::config::Builder::default().timeout_config(super::long_call_timeouts());
    let published = lambda
        .publish_layer_version()
        .layer_name(layer.name)
        .content(content)
        .set_compatible_runtimes(Some(layer.runtimes.iter().map(|r| Runtime::from(r.as_str())).collect()))
        .set_compatible_architectures(Some(
            layer.architectures.iter().map(|a| Architecture::from(a.as_str())).collect(),
        ))
        .set_description(layer.description.map(str::to_string))
        .set_license_info(layer.license.map(str::to_string))
        .customize()
        .config_override(long)
        .send()
        .await
        .call("Lambda", "PublishLayerVersion")?;
    Ok(published.layer_version_arn().unwrap_or_default().to_string())
}

/// Deletes one version of a layer.
pub(crate) async fn delete_layer_version(lambda: &Client, name: &str, version: i64) -> Result<(), CallError> {
    let delete = lambda.delete_layer_version().layer_name(name).version_number(version);
    delete.send().await.call("Lambda", "DeleteLayerVersion")?;
    Ok(())
}

/// Functions asked for their layers at once: hundreds asked together pass
/// GetFunction's quota of 100 per second and are throttled into failure.
const ASKED_AT_ONCE: usize = 4;

/// Every function in `functions` that uses a version of `layer_arn` moves to
/// `new_arn`, keeping its layer order. The deployed configuration is the
/// truth here: it covers Globals, parameters and nested stacks alike.
pub(crate) async fn repoint_users(
    lambda: &Client,
    functions: Vec<String>,
    layer_arn: &str,
    new_arn: &str,
    progress: impl Fn(usize, usize),
) -> Result<(), LambdaError> {
    let prefix = format!("{layer_arn}:");
    let total = functions.len();
    let asking = Arc::new(tokio::sync::Semaphore::new(ASKED_AT_ONCE));
    let mut tasks = tokio::task::JoinSet::new();
    for name in functions {
        let (lambda, prefix, new_arn, asking) = (lambda.clone(), prefix.clone(), new_arn.to_string(), asking.clone());
        tasks.spawn(async move {
            // GetFunction: a quota of its own (see `wait_for_update`).
            let turn = asking.acquire_owned().await;
            let function = lambda.get_function().function_name(&name).send().await.call("Lambda", "GetFunction")?;
            drop(turn);
            let current = function.configuration().map(|c| c.layers()).unwrap_or_default();
            let layers: Vec<String> = current.iter().filter_map(|l| l.arn()).map(str::to_string).collect();
            if !layers.iter().any(|l| l.starts_with(&prefix)) || layers.contains(&new_arn) {
                return Ok(());
            }
            let layers: Vec<String> =
                layers.into_iter().map(|l| if l.starts_with(&prefix) { new_arn.clone() } else { l }).collect();
            when_idle(&lambda, &name, || {
                let update = lambda.update_function_configuration().function_name(&name);
                async {
                    update.set_layers(Some(layers.clone())).send().await.call("Lambda", "UpdateFunctionConfiguration")
                }
            })
            .await?;
            wait_for_update(&lambda, &name).await
        });
    }
    let mut done = 0;
    while let Some(joined) = tasks.join_next().await {
        joined??;
        done += 1;
        progress(done, total);
    }
    Ok(())
}

/// The function's own log group (`LoggingConfig.LogGroup`), if it has one.
pub(crate) async fn custom_log_group(lambda: &Client, name: &str) -> Result<Option<String>, CallError> {
    let config = lambda
        .get_function_configuration()
        .function_name(name)
        .send()
        .await
        .call("Lambda", "GetFunctionConfiguration")?;
    Ok(config.logging_config().and_then(|l| l.log_group()).map(str::to_string))
}

/// Polls until the function is neither `Pending` (just created) nor
/// `InProgress` (being updated); an update that ended `Failed` is an error.
/// It asks GetFunction, as the SDK's waiters do: Lambda gives GetFunction a
/// quota of its own (100 per second), while GetFunctionConfiguration shares
/// the 15 per second of every other control-plane call with the updates
/// being waited for.
async fn wait_for_update(lambda: &Client, name: &str) -> Result<(), LambdaError> {
    let started = Instant::now();
    let mut delay = Duration::from_millis(50);
    loop {
        let function = lambda.get_function().function_name(name).send().await.call("Lambda", "GetFunction")?;
        let Some(config) = function.configuration() else { return Ok(()) };
        let pending = config.state() == Some(&State::Pending);
        match config.last_update_status() {
            _ if pending => {}
            Some(LastUpdateStatus::InProgress) => {}
            Some(LastUpdateStatus::Failed) => {
                let reason = config.last_update_status_reason().unwrap_or("no reason given").to_string();
                return Err(LambdaError::UpdateFailed { function: name.to_string(), reason });
            }
            _ => return Ok(()),
        }
        if started.elapsed() > UPDATE_TIMEOUT {
            return Err(LambdaError::StillInProgress { function: name.to_string() });
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(1));
    }
}
