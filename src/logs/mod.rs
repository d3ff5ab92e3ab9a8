//! `accel logs` (spec §4): the log groups of every function, API and state
//! machine of a deployed stack (nested stacks included), fetched
//! concurrently and merged into one stream ordered by time, with X-Ray
//! traces interleaved; `--tail` follows all of them ([`tail`]).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_cloudwatchlogs::types::FilteredLogEvent;
use serde_json::{Value, json};

use schedule::{Budget, POLL_RATE, lock, spend};

use crate::aws::cloudformation::{self, DeployedResource};
use crate::aws::error::{CallError, CallResult};
use crate::aws::{Aws, apigateway, lambda, sfn};
use crate::printer::Printer;
use crate::report;
use crate::template::kind::ResourceKind;
use crate::time;

mod schedule;
mod tail;

pub(crate) use tail::tail;

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

/// The events of `source` from `from` (to `end_ms`, if given), each page
/// after the first (whose call the caller spent) out of `budget`. The SDK
/// does not retry: throttling is the budget's to answer, and any other
/// failure the caller's to judge. A group that does not exist yet has no
/// events yet.
async fn fetch_group(
    logs: &aws_sdk_cloudwatchlogs::Client,
    source: &Source,
    from: i64,
    end_ms: Option<i64>,
    filter: Option<&str>,
    budget: &Mutex<Budget>,
) -> Result<Vec<Event>, CallError> {
    let no_retry = aws_sdk_cloudwatchlogs::config::Builder::default()
        .retry_config(aws_sdk_cloudwatchlogs::config::retry::RetryConfig::disabled());
    let mut events = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let call = logs
            .filter_log_events()
            .log_group_name(&source.group)
            .start_time(from)
            .set_end_time(end_ms)
            .set_filter_pattern(filter.map(str::to_string))
            .set_next_token(token.clone())
            .customize()
            .config_override(no_retry.clone());
        let page = match call.send().await.call("CloudWatch Logs", "FilterLogEvents") {
            Ok(page) => page,
            Err(e) if e.is_not_found() => return Ok(events),
            Err(e) => return Err(e),
        };
        events.extend(page.events().iter().map(|e| Event::of(&source.resource, e)));
        // The same token again ends the pages too, as in the SDK's paginators.
        match page.next_token() {
            Some(next) if token.as_deref() != Some(next) => token = Some(next.to_string()),
            _ => return Ok(events),
        }
        spend(budget).await;
    }
}

/// Groups fetched at once: the budget paces them, more would only wait.
const FETCH_CONCURRENCY: usize = 4;

/// Tries per group before a fetch gives up on a failure that may pass.
const FETCH_TRIES: u32 = 8;

/// Every event of `sources` in the window, in time order: the groups are
/// fetched concurrently through one [`Budget`] under FilterLogEvents' quota
/// (5 per second in some Regions), so that hundreds of groups are read at
/// the quota's pace instead of being throttled into failure. A throttled
/// group slows the budget down and is read again.
pub(crate) async fn fetch(
    aws: &Aws,
    sources: &[Source],
    request: &LogsRequest,
    printer: &Printer,
) -> Result<Vec<Event>, LogsError> {
    let logs = aws.logs();
    // One group is one quick call or a few: only many groups take long.
    let task = (sources.len() > 1).then(|| printer.task("Fetching logs", Some(sources.len())));
    let budget = Arc::new(Mutex::new(Budget::new(POLL_RATE, Instant::now())));
    let limit = Arc::new(tokio::sync::Semaphore::new(FETCH_CONCURRENCY));
    let mut tasks = tokio::task::JoinSet::new();
    for source in sources {
        let (logs, filter, start, end) = (logs.clone(), request.filter.clone(), request.start_ms, request.end_ms);
        let (source, limit, budget) = (source.clone(), limit.clone(), budget.clone());
        tasks.spawn(async move {
            let _turn = limit.acquire_owned().await;
            let (mut tries, started) = (0, Instant::now());
            loop {
                spend(&budget).await;
                tries += 1;
                match fetch_group(&logs, &source, start, end, filter.as_deref(), &budget).await {
                    Ok(events) => {
                        lock(&budget).answered();
                        return Ok((source.group, started.elapsed(), events));
                    }
                    // The SDK's own retries are off: these are the ones it would retry.
                    Err(e)
                        if tries < FETCH_TRIES && (e.is_throttling() || e.is_server_error() || e.is_unreachable()) =>
                    {
                        lock(&budget).throttled(Instant::now())
                    }
                    Err(e) => return Err(LogsError::from(e)),
                }
            }
        });
    }
    let mut events = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        let (group, elapsed, fetched) = joined??;
        if let Some(task) = &task {
            task.step(&report::Event::Fetch {
                resource: group,
                action: "fetch",
                api: "FilterLogEvents",
                events: fetched.len(),
                duration_ms: elapsed.as_millis(),
                result: "fetched",
            });
        }
        events.extend(fetched);
    }
    events.sort_by(|a, b| (a.timestamp, &a.event_id).cmp(&(b.timestamp, &b.event_id)));
    Ok(events)
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
