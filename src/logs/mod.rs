//! `accel logs` (spec §4): the log groups of every function, API and state
//! machine of a deployed stack (nested stacks included), fetched
//! concurrently and merged into one stream ordered by time, with X-Ray
//! traces interleaved; `--tail` follows all of them without ever dropping
//! a group or printing an event twice.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use aws_sdk_cloudwatchlogs::types::{FilteredLogEvent, LiveTailSessionLogEvent};
use serde_json::{Value, json};

use crate::aws::cloudformation::{self, DeployedResource};
use crate::aws::error::{CallError, CallResult};
use crate::aws::{Aws, apigateway, lambda, sfn};
use crate::printer::Printer;
use crate::template::kind::ResourceKind;
use crate::time;

/// Tail polls each group this often while it is quiet.
const POLL: Duration = Duration::from_millis(1000);

/// Events can reach CloudWatch after later ones (several writers, several
/// groups): a tail looks back this far and skips what it already printed.
const LATE_WINDOW_MS: i64 = 10_000;

/// Why logs could not be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LogsError {
    /// A `--name` that is not in the stack.
    #[error("Resource name ({name}) does not exist. Available resource names: {available}")]
    UnknownName {
        /// The name given.
        name: String,
        /// What the stack has.
        available: String,
    },
    /// Nothing to read.
    #[error("No valid resources find to pull information")]
    NoSources,
    /// The stack does not exist.
    #[error("Invalid --stack-name parameter. Stack with id '{0}' does not exist")]
    NoStack(String),
    /// A call failed.
    #[error(transparent)]
    Call(#[from] CallError),
    /// A fetch task panicked or was cancelled.
    #[error("a log fetch task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// Why a resource of the stack has no logs to read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum NoLogs {
    /// Asking where its logs go failed.
    #[error("{resource}: {source}")]
    Call {
        /// The resource.
        resource: String,
        /// The failed call.
        source: CallError,
    },
    /// An HTTP API without access logs.
    #[error("Access logging is disabled for HTTP API ID ({0})")]
    HttpApiAccessLogsOff(String),
    /// A state machine without logging.
    #[error("Logging is not configured for StepFunctions ({0})")]
    StateMachineLoggingOff(String),
}

/// What to read.
#[derive(Debug, Clone, Default)]
pub(crate) struct LogsRequest {
    /// `--stack-name`.
    pub(crate) stack_name: Option<String>,
    /// `--name`: full paths (`Child/Logical`).
    pub(crate) names: Vec<String>,
    /// `--cw-log-group`.
    pub(crate) log_groups: Vec<String>,
    /// `--filter`.
    pub(crate) filter: Option<String>,
    /// Window start, epoch ms.
    pub(crate) start_ms: i64,
    /// Window end, epoch ms (`None`: now).
    pub(crate) end_ms: Option<i64>,
}

/// A log group and the resource it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Source {
    /// The resource's full path, or the group name for `--cw-log-group`.
    pub(crate) resource: String,
    /// The log group.
    pub(crate) group: String,
}

/// Finds the log groups to read. Resources without logging come back as notes.
pub(crate) async fn sources(aws: &Aws, request: &LogsRequest) -> Result<(Vec<Source>, Vec<NoLogs>), LogsError> {
    let mut found: Vec<Source> =
        request.log_groups.iter().map(|g| Source { resource: g.clone(), group: g.clone() }).collect();
    let mut notes = Vec::new();
    // `--cw-log-group` without `--name` reads only those groups (as sam).
    let from_stack = !request.names.is_empty() || request.log_groups.is_empty();
    if let (Some(stack), true) = (&request.stack_name, from_stack) {
        let deployed = cloudformation::deployed_stack(&aws.cloudformation(), stack)
            .await?
            .ok_or_else(|| LogsError::NoStack(stack.clone()))?;
        let mut logged: Vec<(&String, &DeployedResource)> = deployed
            .iter()
            .filter(|(_, d)| ResourceKind::of(&d.resource_type).is_some_and(ResourceKind::has_logs))
            .collect();
        logged.sort_by(|a, b| a.0.cmp(b.0));
        for name in &request.names {
            if !logged.iter().any(|(path, _)| *path == name) {
                let available = logged.iter().map(|(p, _)| p.as_str()).collect::<Vec<_>>().join(", ");
                return Err(LogsError::UnknownName { name: name.clone(), available });
            }
        }
        let wanted = logged.into_iter().filter(|(path, _)| request.names.is_empty() || request.names.contains(path));
        let mut tasks = tokio::task::JoinSet::new();
        for (path, resource) in wanted {
            let (aws, path, resource) = (aws.clone(), path.clone(), resource.clone());
            tasks.spawn(async move { groups_of(&aws, &path, &resource).await });
        }
        while let Some(joined) = tasks.join_next().await {
            match joined? {
                Ok(sources) => found.extend(sources),
                Err(note) => notes.push(note),
            }
        }
    }
    found.sort_by(|a, b| (&a.resource, &a.group).cmp(&(&b.resource, &b.group)));
    found.dedup();
    if found.is_empty() {
        return Err(LogsError::NoSources);
    }
    Ok((found, notes))
}

/// The log groups of one deployed resource; `Err` says why it has none.
async fn groups_of(aws: &Aws, path: &str, resource: &DeployedResource) -> Result<Vec<Source>, NoLogs> {
    let source = |group: String| Source { resource: path.to_string(), group };
    let failed = |source: CallError| NoLogs::Call { resource: path.to_string(), source };
    let id = &resource.physical_id;
    match ResourceKind::of(&resource.resource_type) {
        Some(ResourceKind::LambdaFunction) => {
            // Without the configuration, Lambda's default group is still a good guess.
            let custom = lambda::custom_log_group(&aws.lambda(), id).await.ok().flatten();
            Ok(vec![source(custom.unwrap_or_else(|| format!("/aws/lambda/{id}")))])
        }
        // Execution logs of every stage the API has (sam assumes `Prod`).
        Some(ResourceKind::RestApi) => {
            let stages = apigateway::rest_api_stages(&aws.apigateway(), id).await.map_err(failed)?;
            Ok(stages.iter().map(|stage| source(format!("API-Gateway-Execution-Logs_{id}/{stage}"))).collect())
        }
        Some(ResourceKind::HttpApi) => {
            let arns = apigateway::http_api_log_destinations(&aws.apigatewayv2(), id).await.map_err(failed)?;
            let groups: Vec<Source> =
                arns.iter().map(|arn| source(arn.rsplit(':').next().unwrap_or(arn).to_string())).collect();
            if groups.is_empty() {
                return Err(NoLogs::HttpApiAccessLogsOff(id.clone()));
            }
            Ok(groups)
        }
        Some(ResourceKind::StateMachine) => {
            let arns = sfn::log_group_arns(&aws.sfn(), id).await.map_err(failed)?;
            let groups: Vec<Source> =
                arns.iter().filter_map(|arn| arn.split(':').nth(6).map(|g| source(g.to_string()))).collect();
            if groups.is_empty() {
                return Err(NoLogs::StateMachineLoggingOff(id.clone()));
            }
            Ok(groups)
        }
        _ => Ok(Vec::new()),
    }
}

/// One log event with the resource it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Event {
    /// The resource (full path) or group.
    pub(crate) resource: String,
    /// The raw event.
    pub(crate) stream: String,
    /// Epoch ms.
    pub(crate) timestamp: i64,
    /// The message.
    pub(crate) message: String,
    /// Epoch ms of ingestion.
    pub(crate) ingestion_time: i64,
    /// CloudWatch's id of the event.
    pub(crate) event_id: String,
}

impl Event {
    fn of(resource: &str, e: &FilteredLogEvent) -> Self {
        Event {
            resource: resource.to_string(),
            stream: e.log_stream_name().unwrap_or_default().to_string(),
            timestamp: e.timestamp().unwrap_or_default(),
            message: e.message().unwrap_or_default().to_string(),
            ingestion_time: e.ingestion_time().unwrap_or_default(),
            event_id: e.event_id().unwrap_or_default().to_string(),
        }
    }
}

/// All events of one group in the window (a missing group has none yet).
async fn fetch_group(
    logs: &aws_sdk_cloudwatchlogs::Client,
    source: &Source,
    start_ms: i64,
    end_ms: Option<i64>,
    filter: Option<&str>,
) -> Result<Vec<Event>, LogsError> {
    let mut pages = logs
        .filter_log_events()
        .log_group_name(&source.group)
        .start_time(start_ms)
        .set_end_time(end_ms)
        .set_filter_pattern(filter.map(str::to_string))
        .into_paginator()
        .send();
    let mut events = Vec::new();
    while let Some(page) = pages.next().await {
        match page.call("CloudWatch Logs", "FilterLogEvents") {
            Ok(page) => events.extend(page.events().iter().map(|e| Event::of(&source.resource, e))),
            Err(e) if e.is_not_found() => break,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(events)
}

/// Groups fetched at once. CloudWatch Logs takes 5 FilterLogEvents per
/// second per account: more calls in flight only earn throttling, and
/// dozens throttled at once use up the SDK's retry quota (shared by every
/// call of the process), so that a fetch of many groups failed.
const FETCH_CONCURRENCY: usize = 5;

/// Every event of `sources` in the window, fetched concurrently, in time order.
pub(crate) async fn fetch(aws: &Aws, sources: &[Source], request: &LogsRequest) -> Result<Vec<Event>, LogsError> {
    let logs = aws.logs();
    let limit = std::sync::Arc::new(tokio::sync::Semaphore::new(FETCH_CONCURRENCY));
    let mut tasks = tokio::task::JoinSet::new();
    for source in sources {
        let (logs, filter, start, end) = (logs.clone(), request.filter.clone(), request.start_ms, request.end_ms);
        let (source, limit) = (source.clone(), limit.clone());
        tasks.spawn(async move {
            let _turn = limit.acquire_owned().await;
            fetch_group(&logs, &source, start, end, filter.as_deref()).await
        });
    }
    let mut events = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        events.extend(joined??);
    }
    events.sort_by(|a, b| (a.timestamp, &a.event_id).cmp(&(b.timestamp, &b.event_id)));
    Ok(events)
}

/// Per-group state of a tail.
#[derive(Debug, Default)]
struct Cursor {
    /// Newest timestamp seen.
    newest: i64,
    /// Ids printed, with their timestamps (pruned past the late window).
    seen: HashMap<String, i64>,
    /// Polls to skip after throttling.
    backoff: u32,
    skip: u32,
}

/// Follows `sources` (and traces when `traces` is set) until Ctrl-C,
/// printing each item as `format` says. Groups are polled together every second; none
/// is ever dropped, and an event is printed once even when it arrives late.
pub(crate) async fn tail(
    aws: &Aws,
    sources: &[Source],
    request: &LogsRequest,
    traces: bool,
    printer: &Printer,
    format: &Format,
) -> Result<(), LogsError> {
    let Some(from) = live_tail(aws, sources, request, traces, printer, format).await? else { return Ok(()) };
    let logs = aws.logs();
    let mut cursors: Vec<Cursor> = sources.iter().map(|_| Cursor { newest: from, ..Default::default() }).collect();
    let mut seen_traces = HashSet::new();
    // Since when the endpoint has been unreachable, and the wait before the next try.
    let mut outage: Option<(std::time::Instant, Duration)> = None;
    loop {
        let mut round = Vec::new();
        let mut lost = None;
        let mut tasks = tokio::task::JoinSet::new();
        for (index, (source, cursor)) in sources.iter().zip(&mut cursors).enumerate() {
            if cursor.skip > 0 {
                cursor.skip -= 1;
                continue;
            }
            let from = (cursor.newest - LATE_WINDOW_MS).max(request.start_ms);
            let (logs, source, filter) = (logs.clone(), source.clone(), request.filter.clone());
            tasks.spawn(async move { (index, fetch_group(&logs, &source, from, None, filter.as_deref()).await) });
        }
        while let Some(joined) = tasks.join_next().await {
            let (index, result) = joined?;
            let cursor = &mut cursors[index];
            match result {
                Ok(events) => {
                    cursor.backoff = 0;
                    for event in events {
                        if cursor.seen.insert(event.event_id.clone(), event.timestamp).is_none() {
                            cursor.newest = cursor.newest.max(event.timestamp);
                            round.push(Item::Log(event));
                        }
                    }
                    let horizon = cursor.newest - 2 * LATE_WINDOW_MS;
                    cursor.seen.retain(|_, ts| *ts >= horizon);
                }
                // Throttled: this group waits longer, the others go on.
                Err(LogsError::Call(e)) if e.is_throttling() => {
                    cursor.backoff = (cursor.backoff * 2).clamp(1, 30);
                    cursor.skip = cursor.backoff;
                }
                // The network or the endpoint is gone: the tail waits for it.
                Err(LogsError::Call(e)) if e.is_unreachable() => lost = Some(e),
                Err(e) => return Err(e),
            }
        }
        if traces && lost.is_none() {
            match fetch_traces(aws, request.start_ms, time::now_ms(), &seen_traces).await {
                Ok(found) => round.extend(
                    found.into_iter().filter(|t| seen_traces.insert((t.id.clone(), t.revision))).map(Item::Trace),
                ),
                Err(LogsError::Call(e)) if e.is_unreachable() => lost = Some(e),
                Err(e) => return Err(e),
            }
        }
        round.sort_by_key(Item::timestamp);
        for item in round {
            printer.out_raw(&format.render(&item));
        }
        let pause = match (lost, outage) {
            (Some(e), None) => {
                printer.note(format_args!("Lost the connection: {e}. Retrying until it is back (Ctrl-C stops)."));
                outage = Some((std::time::Instant::now(), POLL));
                POLL
            }
            (Some(_), Some((since, wait))) => {
                let wait = (wait * 2).min(MAX_RECONNECT_WAIT);
                outage = Some((since, wait));
                wait
            }
            (None, Some((since, _))) => {
                printer.note(format_args!("Connection restored after {} s.", since.elapsed().as_secs()));
                outage = None;
                POLL
            }
            (None, None) => POLL,
        };
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = tokio::signal::ctrl_c() => return Ok(()),
        }
    }
}

/// The longest wait between two tries while the endpoint is unreachable.
const MAX_RECONNECT_WAIT: Duration = Duration::from_secs(30);

/// CloudWatch Logs takes at most this many groups per live tail session.
const LIVE_TAIL_GROUPS: usize = 10;

/// Tails through `StartLiveTail`: the window so far is fetched, then events
/// stream in as CloudWatch receives them, no polling; groups are split over
/// sessions of at most [`LIVE_TAIL_GROUPS`], and a session that ends (AWS
/// ends them after 3 hours) is opened again, with what arrived in between
/// fetched once. Returns `None` once the user stopped it, or the time from
/// which the caller polls when live tail is not available (or stops being),
/// having printed nothing after that time.
async fn live_tail(
    aws: &Aws,
    sources: &[Source],
    request: &LogsRequest,
    traces: bool,
    printer: &Printer,
    format: &Format,
) -> Result<Option<i64>, LogsError> {
    // Quick tries: without an answer the tail polls (and reports the outage there).
    let quick = aws_sdk_sts::config::Builder::default()
        .retry_config(aws_sdk_sts::config::retry::RetryConfig::disabled())
        .timeout_config(crate::aws::long_call_timeouts());
    let identity = live_tail_try(|| {
        let call = aws.sts().get_caller_identity().customize().config_override(quick.clone());
        async { call.send().await.call("STS", "GetCallerIdentity") }
    });
    let Some(identity) = identity.await else {
        return Ok(Some(request.start_ms));
    };
    let account = identity.account().unwrap_or_default();
    let region = aws.region();
    let partition = crate::template::intrinsics::partition_of(region);
    let arn = |group: &str| format!("arn:{partition}:logs:{region}:{account}:log-group:{group}");
    let resource_of: HashMap<String, String> = sources.iter().map(|s| (arn(&s.group), s.resource.clone())).collect();
    let groups: Vec<String> = resource_of.keys().cloned().collect();
    let Some(mut sessions) = start_sessions(aws, &groups, request).await else { return Ok(Some(request.start_ms)) };
    let mut items: Vec<Item> = fetch(aws, sources, request).await?.into_iter().map(Item::Log).collect();
    let mut seen_traces = HashSet::new();
    // The newest event printed: where a new session, or polling, takes over;
    // and the events printed in the late window before it, so that the
    // events fetched after a session ended are printed once.
    let mut newest = request.start_ms;
    let mut printed: HashSet<(String, String, i64, String)> = HashSet::new();
    loop {
        if traces {
            for trace in fetch_traces(aws, request.start_ms, time::now_ms(), &seen_traces).await? {
                if seen_traces.insert((trace.id.clone(), trace.revision)) {
                    items.push(Item::Trace(trace));
                }
            }
        }
        items.sort_by_key(Item::timestamp);
        for item in items.drain(..) {
            if let Item::Log(event) = &item {
                let key = (event.resource.clone(), event.stream.clone(), event.timestamp, event.message.clone());
                if !printed.insert(key) {
                    continue;
                }
                newest = newest.max(event.timestamp);
            }
            printer.out_raw(&format.render(&item));
        }
        printed.retain(|(_, _, timestamp, _)| *timestamp >= newest - LATE_WINDOW_MS);
        let results = tokio::select! {
            results = sessions.recv() => match results {
                Some(results) => results,
                None => {
                    let Some(again) = start_sessions(aws, &groups, request).await else { return Ok(Some(newest + 1)) };
                    sessions = again;
                    let from = (newest - LATE_WINDOW_MS).max(request.start_ms);
                    let gap = LogsRequest { start_ms: from, end_ms: None, ..request.clone() };
                    items.extend(fetch(aws, sources, &gap).await?.into_iter().map(Item::Log));
                    continue;
                }
            },
            _ = tokio::time::sleep(POLL), if traces => Vec::new(),
            _ = tokio::signal::ctrl_c() => return Ok(None),
        };
        for e in results {
            let group = e.log_group_identifier().unwrap_or_default();
            items.push(Item::Log(Event {
                resource: resource_of.get(group).cloned().unwrap_or_else(|| group.to_string()),
                stream: e.log_stream_name().unwrap_or_default().to_string(),
                timestamp: e.timestamp().unwrap_or_default(),
                message: e.message().unwrap_or_default().to_string(),
                ingestion_time: e.ingestion_time().unwrap_or_default(),
                event_id: String::new(),
            }));
        }
    }
}

/// Tries a call live tail needs up to 3 times, 10 s each: again after a
/// failure that may pass (a 5xx answer, throttling, a dropped connection),
/// not after one that says live tail is not available here (an unknown
/// operation, access denied) or a silent endpoint. `None`: poll instead.
async fn live_tail_try<T, F, Fut>(call: F) -> Option<T>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<T, CallError>>,
{
    let mut wait = Duration::from_millis(200);
    for attempt in 1..=3 {
        match tokio::time::timeout(Duration::from_secs(10), call()).await {
            Ok(Ok(answer)) => return Some(answer),
            Ok(Err(e)) if attempt < 3 && (e.is_server_error() || e.is_throttling() || e.is_unreachable()) => {
                tokio::time::sleep(wait).await;
                wait *= 2;
            }
            _ => return None,
        }
    }
    None
}

/// Opens live tail sessions over `groups` (at most [`LIVE_TAIL_GROUPS`] per
/// session); their events arrive on the channel, which closes once every
/// session has ended. `None` when live tail is not available here.
async fn start_sessions(
    aws: &Aws,
    groups: &[String],
    request: &LogsRequest,
) -> Option<tokio::sync::mpsc::UnboundedReceiver<Vec<LiveTailSessionLogEvent>>> {
    use aws_sdk_cloudwatchlogs::types::StartLiveTailResponseStream;
    // One try, no retries: an endpoint without live tail must not hold up the fallback.
    let no_retry = aws_sdk_cloudwatchlogs::config::Builder::default()
        .retry_config(aws_sdk_cloudwatchlogs::config::retry::RetryConfig::disabled())
        .timeout_config(crate::aws::long_call_timeouts());
    let mut streams = Vec::new();
    for chunk in groups.chunks(LIVE_TAIL_GROUPS) {
        let started = live_tail_try(|| {
            let call = aws.logs().start_live_tail().set_log_group_identifiers(Some(chunk.to_vec()));
            let call =
                call.set_log_event_filter_pattern(request.filter.clone()).customize().config_override(no_retry.clone());
            async { call.send().await.call("CloudWatch Logs", "StartLiveTail") }
        });
        streams.push(started.await?.response_stream);
    }
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    for mut stream in streams {
        let tx = tx.clone();
        tokio::spawn(async move {
            while let Ok(Some(update)) = stream.recv().await {
                if let StartLiveTailResponseStream::SessionUpdate(update) = update
                    && tx.send(update.session_results().to_vec()).is_err()
                {
                    break;
                }
            }
        });
    }
    Some(rx)
}

/// An X-Ray trace with its segment documents.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Trace {
    /// Trace id.
    pub(crate) id: String,
    /// Revision (a higher one is shown again).
    pub(crate) revision: i32,
    /// Duration in seconds.
    pub(crate) duration: f64,
    /// Parsed segment documents.
    pub(crate) segments: Vec<Value>,
}

impl Trace {
    fn start_ms(&self) -> i64 {
        let first = self.segments.iter().filter_map(|s| s.get("start_time").and_then(Value::as_f64)).reduce(f64::min);
        (first.unwrap_or_default() * 1000.0) as i64
    }
}

/// Complete traces of the window that are not in `known` (id, revision):
/// summaries, then the documents of the new ones only, so that a tail does
/// not fetch every trace of its window again each second.
pub(crate) async fn fetch_traces(
    aws: &Aws,
    start_ms: i64,
    end_ms: i64,
    known: &HashSet<(String, i32)>,
) -> Result<Vec<Trace>, LogsError> {
    use aws_sdk_xray::primitives::DateTime;
    let xray = aws.xray();
    let mut pages = xray
        .get_trace_summaries()
        .start_time(DateTime::from_millis(start_ms))
        .end_time(DateTime::from_millis(end_ms))
        .time_range_type(aws_sdk_xray::types::TimeRangeType::TraceId)
        .into_paginator()
        .send();
    let mut summaries = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.call("X-Ray", "GetTraceSummaries")?;
        summaries.extend(page.trace_summaries().iter().filter(|s| s.is_partial() != Some(true)).cloned());
    }
    let revisions: HashMap<String, i32> = summaries
        .iter()
        .filter_map(|s| s.id().map(|id| (id.to_string(), s.revision())))
        .filter(|(id, revision)| !known.contains(&(id.clone(), *revision)))
        .collect();
    let ids: Vec<String> = revisions.keys().cloned().collect();
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut traces = Vec::new();
    for (id, duration, documents) in trace_documents(&xray, &ids, start_ms, end_ms).await? {
        let segments = documents.iter().filter_map(|d| serde_json::from_str(d).ok()).collect();
        let revision = revisions.get(&id).copied().unwrap_or_default();
        traces.push(Trace { id, revision, duration, segments });
    }
    traces.sort_by_key(Trace::start_ms);
    Ok(traces)
}

/// The segment documents of traces `ids`: (id, duration, documents). With
/// Transaction Search on (segments go to CloudWatch Logs), full traces come
/// only through StartTraceRetrieval and ListRetrievedTraces; otherwise
/// through BatchGetTraces. An endpoint that cannot say where segments go
/// is taken to keep them in X-Ray.
async fn trace_documents(
    xray: &aws_sdk_xray::Client,
    ids: &[String],
    start_ms: i64,
    end_ms: i64,
) -> Result<Vec<(String, f64, Vec<String>)>, LogsError> {
    use aws_sdk_xray::primitives::DateTime;
    use aws_sdk_xray::types::{RetrievalStatus, TraceFormatType, TraceSegmentDestination};
    let destination = xray.get_trace_segment_destination().send().await;
    let in_logs = destination.is_ok_and(|d| d.destination() == Some(&TraceSegmentDestination::CloudWatchLogs));
    let mut found = Vec::new();
    for batch in ids.chunks(5) {
        if !in_logs {
            let out = xray.batch_get_traces().set_trace_ids(Some(batch.to_vec())).send().await;
            for t in out.call("X-Ray", "BatchGetTraces")?.traces() {
                let documents = t.segments().iter().filter_map(|s| s.document()).map(str::to_string).collect();
                found.push((t.id().unwrap_or_default().to_string(), t.duration().unwrap_or_default(), documents));
            }
            continue;
        }
        let retrieval = xray
            .start_trace_retrieval()
            .set_trace_ids(Some(batch.to_vec()))
            .start_time(DateTime::from_millis(start_ms))
            .end_time(DateTime::from_millis(end_ms))
            .send()
            .await
            .call("X-Ray", "StartTraceRetrieval")?;
        let token = retrieval.retrieval_token().unwrap_or_default().to_string();
        let mut delay = Duration::from_millis(100);
        let mut next: Option<String> = None;
        loop {
            let page = xray
                .list_retrieved_traces()
                .retrieval_token(&token)
                .trace_format(TraceFormatType::Xray)
                .set_next_token(next.take())
                .send()
                .await
                .call("X-Ray", "ListRetrievedTraces")?;
            match page.retrieval_status() {
                Some(RetrievalStatus::Scheduled | RetrievalStatus::Running) => {
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(1));
                    continue;
                }
                Some(RetrievalStatus::Complete) => {}
                // Failed, cancelled or timed out: these traces are left out, as unprocessed ones are.
                _ => break,
            }
            for t in page.traces() {
                let documents = t.spans().iter().filter_map(|s| s.document()).map(str::to_string).collect();
                found.push((t.id().unwrap_or_default().to_string(), t.duration().unwrap_or_default(), documents));
            }
            match page.next_token() {
                Some(token) => next = Some(token.to_string()),
                None => break,
            }
        }
    }
    Ok(found)
}

/// A line of output: a log event or a trace.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Item {
    /// A log event.
    Log(Event),
    /// An X-Ray trace.
    Trace(Trace),
}

impl Item {
    /// When it happened, epoch ms.
    pub(crate) fn timestamp(&self) -> i64 {
        match self {
            Item::Log(e) => e.timestamp,
            Item::Trace(t) => t.start_ms(),
        }
    }
}

/// How items are printed.
#[derive(Debug, Clone, Default)]
pub(crate) struct Format {
    /// One JSON object per line.
    pub(crate) json: bool,
    /// ANSI colours.
    pub(crate) color: bool,
    /// `--filter`, underlined in text.
    pub(crate) filter: Option<String>,
}

impl Format {
    /// The text of one item, ending with a newline.
    pub(crate) fn render(&self, item: &Item) -> String {
        match item {
            Item::Log(e) if self.json => format!(
                "{}\n",
                json!({"logStreamName": e.stream, "timestamp": e.timestamp, "message": e.message,
                    "ingestionTime": e.ingestion_time, "eventId": e.event_id, "resource": e.resource})
            ),
            Item::Log(e) => self.log_text(e),
            Item::Trace(t) if self.json => {
                format!(
                    "{}\n",
                    json!({"Id": t.id, "Duration": t.duration, "Revision": t.revision, "Segments": t.segments})
                )
            }
            Item::Trace(t) => self.trace_text(t),
        }
    }

    fn paint(&self, code: &str, text: &str) -> String {
        if self.color { format!("\x1b[{code}m{text}\x1b[0m") } else { text.to_string() }
    }

    fn log_text(&self, e: &Event) -> String {
        let mut message = e.message.clone();
        if message.contains("Task timed out") || message.contains("Process exited before completing request") {
            message = self.paint("31", &message);
        } else if message.trim_start().starts_with('{')
            && let Ok(value) = serde_json::from_str::<Value>(message.trim())
        {
            message = serde_json::to_string_pretty(&value).unwrap_or(message);
        }
        if let Some(filter) = self.filter.as_deref().filter(|f| self.color && !f.is_empty()) {
            message = message.replace(filter, &self.paint("4", filter));
        }
        let line = format!(
            "{} {} {} {message}",
            self.paint("1;35", &e.resource),
            self.paint("36", &e.stream),
            self.paint("33", &time::iso(e.timestamp))
        );
        if line.ends_with('\n') { line } else { format!("{line}\n") }
    }

    fn trace_text(&self, t: &Trace) -> String {
        let mut out = format!(
            "\nXRay Event [revision {}] at ({}) with id ({}) and duration ({:.3}s)",
            t.revision,
            time::iso(t.start_ms()).trim_end_matches("+00:00"),
            t.id,
            t.duration
        );
        let mut segments: Vec<&Value> = t.segments.iter().collect();
        segments.sort_by(|a, b| start_of(a).total_cmp(&start_of(b)));
        for segment in segments {
            segment_lines(segment, 0, &mut out);
        }
        out.push('\n');
        out
    }
}

fn start_of(segment: &Value) -> f64 {
    segment.get("start_time").and_then(Value::as_f64).unwrap_or_default()
}

/// ` - <duration>s - <name> [HTTP: status]`, subsegments indented.
fn segment_lines(segment: &Value, level: usize, out: &mut String) {
    let end = segment.get("end_time").and_then(Value::as_f64).unwrap_or_else(|| start_of(segment));
    let name = segment.get("name").and_then(Value::as_str).unwrap_or_default();
    let status = segment.pointer("/http/response/status").and_then(Value::as_i64);
    let http = status.map(|s| format!(" [HTTP: {s}]")).unwrap_or_default();
    out.push_str(&format!("\n{} - {:.3}s - {name}{http}", "  ".repeat(level), end - start_of(segment)));
    let mut children: Vec<&Value> =
        segment.get("subsegments").and_then(Value::as_array).into_iter().flatten().collect();
    children.sort_by(|a, b| start_of(a).total_cmp(&start_of(b)));
    for child in children {
        segment_lines(child, level + 1, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(message: &str) -> Event {
        Event {
            resource: "HelloFunction".into(),
            stream: "2024/01/02/[$LATEST]abc".into(),
            timestamp: 1704200000123,
            message: message.into(),
            ingestion_time: 1704200000200,
            event_id: "1".into(),
        }
    }

    #[test]
    fn text_lines_like_sam_with_the_resource_first() {
        let format = Format::default();
        assert_eq!(
            format.render(&Item::Log(event("START RequestId: 1\n"))),
            "HelloFunction 2024/01/02/[$LATEST]abc 2024-01-02T12:53:20.123000+00:00 START RequestId: 1\n"
        );
        let pretty = format.render(&Item::Log(event(r#"{"a": 1}"#)));
        assert!(pretty.ends_with("+00:00 {\n  \"a\": 1\n}\n"), "{pretty}");
        let colored = Format { color: true, filter: Some("Req".into()), ..Default::default() };
        assert!(colored.render(&Item::Log(event("RequestId"))).contains("\x1b[4mReq\x1b[0m"));
    }

    #[test]
    fn json_lines_parse() {
        let line = Format { json: true, ..Default::default() }.render(&Item::Log(event("m")));
        let value: Value = serde_json::from_str(line.trim()).unwrap();
        assert_eq!(value["timestamp"], 1704200000123i64);
        assert_eq!(value["eventId"], "1");
        assert_eq!(value["resource"], "HelloFunction");
    }

    #[test]
    fn traces_like_sam() {
        let trace = Trace {
            id: "1-abc".into(),
            revision: 2,
            duration: 0.5,
            segments: vec![json!({"name": "fn", "start_time": 1704200000.0, "end_time": 1704200000.5,
                "http": {"response": {"status": 200}},
                "subsegments": [{"name": "db", "start_time": 1704200000.1, "end_time": 1704200000.2}]})],
        };
        let text = Format::default().render(&Item::Trace(trace));
        assert!(
            text.starts_with(
                "\nXRay Event [revision 2] at (2024-01-02T12:53:20) with id (1-abc) and duration (0.500s)"
            )
        );
        assert!(text.contains("\n - 0.500s - fn [HTTP: 200]\n   - 0.100s - db"), "{text}");
    }
}
