//! `accel logs --tail`: follows every group without throttling itself.
//! Groups stream through CloudWatch Logs' StartLiveTail, ten per session and
//! as many sessions as the account allows; the others are polled with
//! FilterLogEvents through one rate budget under its quota (see
//! [`super::schedule`]). No group is ever dropped, and an event is printed
//! once even when it arrives late.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_cloudwatchlogs::primitives::event_stream::EventReceiver;
use aws_sdk_cloudwatchlogs::types::error::StartLiveTailResponseStreamError;
use aws_sdk_cloudwatchlogs::types::{LiveTailSessionLogEvent, StartLiveTailResponseStream};
use tokio::sync::mpsc;

use super::schedule::{Budget, POLL, POLL_RATE, Schedule, lock, spend};
use super::{Event, Format, Item, LogsError, LogsRequest, Source, fetch_group, fetch_traces};
use crate::aws::Aws;
use crate::aws::error::{CallError, CallResult};
use crate::printer::Printer;
use crate::time;

/// Events can reach CloudWatch after later ones (several writers, several
/// groups): a poll looks back this far and skips what was already printed.
const LATE_WINDOW_MS: i64 = 10_000;

/// The longest wait between two tries while the endpoint is unreachable.
const MAX_RECONNECT_WAIT: Duration = Duration::from_secs(30);

/// CloudWatch Logs takes at most this many groups per live tail session
/// ("Log groups scanned per Live Tail session" on its quotas page,
/// <https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/cloudwatch_limits_cwl.html>).
const LIVE_TAIL_GROUPS: usize = 10;

/// Live tail sessions a tail opens at most: CloudWatch Logs allows 15 at
/// once per account and Region by default ("Live Tail concurrent sessions
/// limit", adjustable, same page). Groups past 15 × 10 are polled.
const MAX_SESSIONS: usize = 15;

/// StartLiveTail calls per second, under its quota of 5 ("StartLiveTail
/// throttle limit in transactions per second", same page), which opening
/// fifteen sessions at once would meet.
const SESSION_START_RATE: f64 = 4.0;

/// Polls in flight at once: the budget paces them, more would only wait.
const POLLS_IN_FLIGHT: usize = 4;

/// Output is gathered this long and printed in time order, so that the
/// answers of several groups arriving together read in order.
const FLUSH: Duration = Duration::from_millis(500);

/// Follows `sources` (and traces when `traces` is set) until Ctrl-C,
/// printing each item as `format` says: the window so far, then what
/// arrives. The first groups stream through live tail sessions (at most
/// [`MAX_SESSIONS`]); the others, and those whose session could not be
/// opened, are polled through one [`Budget`] of [`POLL_RATE`] calls per
/// second, in the order a [`Schedule`] gives.
pub(crate) async fn tail(
    aws: &Aws,
    sources: &[Source],
    request: &LogsRequest,
    traces: bool,
    printer: &Printer,
    format: &Format,
) -> Result<(), LogsError> {
    let mut schedule = Schedule::new(sources.len());
    let (news_tx, mut news) = mpsc::unbounded_channel();
    let live = open_sessions(aws, sources, request.filter.as_deref(), &mut schedule, &news_tx).await;
    drop(news_tx);
    let mut streaming = !live.sessions.is_empty();
    let logs = aws.logs();
    let budget = Arc::new(Mutex::new(Budget::new(POLL_RATE, Instant::now())));
    let mut cursors: Vec<Cursor> = sources.iter().map(|_| Cursor::new(request.start_ms)).collect();
    let mut link = Link::default();
    let mut polls = tokio::task::JoinSet::new();
    let mut pending: Vec<Item> = Vec::new();
    let mut seen_traces = HashSet::new();
    let mut flush = tokio::time::interval(FLUSH);
    let mut trace_tick = tokio::time::interval(POLL);
    trace_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        // Start every poll that the budget, the schedule and the link allow.
        let now = Instant::now();
        // While the endpoint does not answer, one call at a time finds out when it is back.
        let room = if link.is_down() { 1 } else { POLLS_IN_FLIGHT };
        let mut wake = None;
        while polls.len() < room {
            if let Some(at) = link.next_try().filter(|at| *at > now) {
                wake = Some(at);
                break;
            }
            let wait = lock(&budget).wait(now);
            if !wait.is_zero() {
                wake = Some(now + wait);
                break;
            }
            let Some(index) = schedule.next(now) else {
                wake = schedule.next_due(now);
                break;
            };
            lock(&budget).take(now);
            let from = (cursors[index].newest - LATE_WINDOW_MS).max(request.start_ms);
            let (logs, source, filter, budget) =
                (logs.clone(), sources[index].clone(), request.filter.clone(), budget.clone());
            polls.spawn(async move {
                (index, now, fetch_group(&logs, &source, from, None, filter.as_deref(), &budget).await)
            });
        }
        let wake_at = tokio::time::Instant::from_std(wake.unwrap_or(now));
        tokio::select! {
            Some(joined) = polls.join_next(), if !polls.is_empty() => {
                let (index, sent, result) = joined?;
                let now = Instant::now();
                match result {
                    Ok(events) => {
                        lock(&budget).answered();
                        if let Some(outage) = link.answered(now) {
                            printer.note(format_args!("Connection restored after {} s.", outage.as_secs()));
                        }
                        let fresh = cursors[index].admit(events);
                        schedule.answered(index, now, !fresh.is_empty());
                        pending.extend(fresh.into_iter().map(Item::Log));
                    }
                    // Throttled, or failing on its side: the whole budget slows
                    // down, and the group is due again first.
                    Err(e) if e.is_throttling() || e.is_server_error() => {
                        lock(&budget).throttled(now);
                        schedule.failed(index);
                    }
                    Err(e) if e.is_unreachable() => {
                        schedule.failed(index);
                        if link.failed(sent, now) {
                            printer.note(lost(&e));
                        }
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            got = news.recv(), if streaming => match got {
                Some(News::Events(events)) => pending.extend(live.admit(&events, sources, &mut cursors)),
                Some(News::Reopened(session)) => schedule.streamed(&live.sessions[session]),
                Some(News::Closed(session)) => schedule.polled(&live.sessions[session]),
                None => streaming = false,
            },
            _ = tokio::time::sleep_until(wake_at), if wake.is_some() => {}
            _ = flush.tick() => print(&mut pending, printer, format),
            _ = trace_tick.tick(), if traces && !link.is_down() => {
                let sent = Instant::now();
                match fetch_traces(aws, request.start_ms, time::now_ms(), &seen_traces).await {
                    Ok(found) => pending.extend(
                        found.into_iter().filter(|t| seen_traces.insert((t.id.clone(), t.revision))).map(Item::Trace),
                    ),
                    Err(LogsError::Call(e)) if e.is_unreachable() => {
                        if link.failed(sent, Instant::now()) {
                            printer.note(lost(&e));
                        }
                    }
                    Err(e) => return Err(e),
                }
            }
            _ = &mut ctrl_c => {
                print(&mut pending, printer, format);
                return Ok(());
            }
        }
    }
}

fn lost(e: &CallError) -> String {
    format!("Lost the connection: {e}. Retrying until it is back (Ctrl-C stops).")
}

/// Prints what was gathered, in time order.
fn print(pending: &mut Vec<Item>, printer: &Printer, format: &Format) {
    pending.sort_by_key(Item::timestamp);
    for item in pending.drain(..) {
        printer.out_raw(&format.render(&item));
    }
}

/// What a tail printed of one group: its newest timestamp, and the events
/// of the late window before it. Live tail events carry no id, so an event
/// is known by its stream, time and message, and its rank among identical
/// ones of the same answer.
#[derive(Debug)]
struct Cursor {
    newest: i64,
    seen: HashSet<(String, i64, String, usize)>,
}

impl Cursor {
    fn new(start_ms: i64) -> Self {
        Cursor { newest: start_ms, seen: HashSet::new() }
    }

    /// The events of one answer that were not printed yet.
    fn admit(&mut self, events: Vec<Event>) -> Vec<Event> {
        let mut ranks: HashMap<(String, i64, String), usize> = HashMap::new();
        let mut fresh = Vec::new();
        for event in events {
            let rank = ranks.entry((event.stream.clone(), event.timestamp, event.message.clone())).or_default();
            let key = (event.stream.clone(), event.timestamp, event.message.clone(), *rank);
            *rank += 1;
            if self.seen.insert(key) {
                self.newest = self.newest.max(event.timestamp);
                fresh.push(event);
            }
        }
        let horizon = self.newest - 2 * LATE_WINDOW_MS;
        self.seen.retain(|(_, timestamp, _, _)| *timestamp >= horizon);
        fresh
    }
}

/// Whether the endpoint answers, as the tail's calls find it. A call
/// without an answer makes it suspect; when one sent after that fails too,
/// the outage is reported, and calls go one at a time, ever more slowly,
/// until one is answered.
#[derive(Debug, Default)]
struct Link {
    down: Option<Down>,
}

#[derive(Debug)]
struct Down {
    /// The first call found without an answer.
    since: Instant,
    /// The outage was reported.
    reported: bool,
    wait: Duration,
    next_try: Instant,
}

impl Link {
    /// A call sent at `sent` got no answer; `true` when the outage is to be reported now.
    fn failed(&mut self, sent: Instant, now: Instant) -> bool {
        let Some(down) = &mut self.down else {
            self.down = Some(Down { since: now, reported: false, wait: POLL, next_try: now + POLL });
            return false;
        };
        // Sent before the link was suspect: no news.
        if sent < down.since {
            return false;
        }
        let report = !down.reported;
        if down.reported {
            down.wait = (down.wait * 2).min(MAX_RECONNECT_WAIT);
        }
        down.reported = true;
        down.next_try = now + down.wait;
        report
    }

    /// A call was answered: how long the reported outage lasted (`None`: none was reported).
    fn answered(&mut self, now: Instant) -> Option<Duration> {
        self.down.take().filter(|down| down.reported).map(|down| now.saturating_duration_since(down.since))
    }

    fn is_down(&self) -> bool {
        self.down.is_some()
    }

    /// Until when calls wait.
    fn next_try(&self) -> Option<Instant> {
        self.down.as_ref().map(|down| down.next_try)
    }
}

/// What the tasks keeping live tail sessions tell the tail.
#[derive(Debug)]
enum News {
    /// Events a session streamed.
    Events(Vec<LiveTailSessionLogEvent>),
    /// The session (its index) ended and was opened again: its groups owe the gap.
    Reopened(usize),
    /// The session ended and could not be opened again: its groups are polled.
    Closed(usize),
}

/// Why a live tail session was not opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NoSession {
    /// A quota refused it (the account's sessions are all in use): no further one is tried.
    Quota,
    /// A group of it does not exist yet (a function that never ran).
    Missing,
    /// Live tail is not available here, or did not answer.
    Unavailable,
}

type LiveStream = EventReceiver<StartLiveTailResponseStream, StartLiveTailResponseStreamError>;

/// The live tail sessions of a tail.
#[derive(Debug, Default)]
struct Live {
    /// The sources (indexes) each session serves.
    sessions: Vec<Vec<usize>>,
    /// The sources of each streamed log group, by name.
    by_group: HashMap<String, Vec<usize>>,
}

impl Live {
    /// The events of a session update that were not printed yet, each as
    /// the event of every source reading its group.
    fn admit(&self, events: &[LiveTailSessionLogEvent], sources: &[Source], cursors: &mut [Cursor]) -> Vec<Item> {
        let mut answers: HashMap<usize, Vec<Event>> = HashMap::new();
        for e in events {
            let identifier = e.log_group_identifier().unwrap_or_default();
            let group = identifier.split_once(":log-group:").map_or(identifier, |(_, name)| name);
            for &index in self.by_group.get(group.trim_end_matches(":*")).into_iter().flatten() {
                answers.entry(index).or_default().push(Event {
                    resource: sources[index].resource.clone(),
                    stream: e.log_stream_name().unwrap_or_default().to_string(),
                    timestamp: e.timestamp().unwrap_or_default(),
                    message: e.message().unwrap_or_default().to_string(),
                    ingestion_time: e.ingestion_time().unwrap_or_default(),
                    event_id: String::new(),
                });
            }
        }
        answers.into_iter().flat_map(|(index, events)| cursors[index].admit(events)).map(Item::Log).collect()
    }
}

/// Opens live tail sessions over the first groups, [`LIVE_TAIL_GROUPS`] a
/// session and at most [`MAX_SESSIONS`], one after the other, until one is
/// refused for a quota or live tail turns out not to be available here (a
/// session with a missing group is left out, and the next one tried). The
/// groups of each open session owe their window; a task keeps each session,
/// opening it again when it ends. Every other group is polled.
async fn open_sessions(
    aws: &Aws,
    sources: &[Source],
    filter: Option<&str>,
    schedule: &mut Schedule,
    news: &mpsc::UnboundedSender<News>,
) -> Live {
    let mut live = Live::default();
    // Quick tries: without an answer the tail polls (and reports the outage there).
    let quick = aws_sdk_sts::config::Builder::default()
        .retry_config(aws_sdk_sts::config::retry::RetryConfig::disabled())
        .timeout_config(crate::aws::long_call_timeouts());
    let identity = live_tail_try(|| {
        let call = aws.sts().get_caller_identity().customize().config_override(quick.clone());
        async { call.send().await.call("STS", "GetCallerIdentity") }
    });
    let Ok(identity) = identity.await else { return live };
    let (account, region) = (identity.account().unwrap_or_default(), aws.region());
    let partition = crate::template::intrinsics::partition_of(region);
    let mut groups: Vec<&str> = Vec::new();
    for (index, source) in sources.iter().enumerate() {
        let readers = live.by_group.entry(source.group.clone()).or_default();
        if readers.is_empty() {
            groups.push(&source.group);
        }
        readers.push(index);
    }
    let starts = Arc::new(Mutex::new(Budget::new(SESSION_START_RATE, Instant::now())));
    for chunk in groups.chunks(LIVE_TAIL_GROUPS).take(MAX_SESSIONS) {
        let session = Session {
            aws: aws.clone(),
            arns: chunk.iter().map(|g| format!("arn:{partition}:logs:{region}:{account}:log-group:{g}")).collect(),
            filter: filter.map(str::to_string),
            starts: starts.clone(),
        };
        match session.open().await {
            Ok(stream) => {
                let served: Vec<usize> = chunk.iter().flat_map(|group| live.by_group[*group].clone()).collect();
                schedule.streamed(&served);
                tokio::spawn(session.keep(live.sessions.len(), stream, news.clone()));
                live.sessions.push(served);
            }
            Err(NoSession::Missing) => continue,
            Err(NoSession::Quota | NoSession::Unavailable) => break,
        }
    }
    live
}

/// One live tail session: how to open it.
struct Session {
    aws: Aws,
    arns: Vec<String>,
    filter: Option<String>,
    /// The pace of StartLiveTail calls, shared by every session.
    starts: Arc<Mutex<Budget>>,
}

impl Session {
    async fn open(&self) -> Result<LiveStream, NoSession> {
        // One try per call, no SDK retries: an endpoint without live tail must not hold up polling.
        let no_retry = aws_sdk_cloudwatchlogs::config::Builder::default()
            .retry_config(aws_sdk_cloudwatchlogs::config::retry::RetryConfig::disabled())
            .timeout_config(crate::aws::long_call_timeouts());
        let started = live_tail_try(|| {
            let call = self.aws.logs().start_live_tail().set_log_group_identifiers(Some(self.arns.clone()));
            let call =
                call.set_log_event_filter_pattern(self.filter.clone()).customize().config_override(no_retry.clone());
            async {
                spend(&self.starts).await;
                call.send().await.call("CloudWatch Logs", "StartLiveTail")
            }
        });
        Ok(started.await?.response_stream)
    }

    /// Forwards the session's events until it ends (AWS ends sessions after
    /// 3 hours), then opens it again, and says which it did.
    async fn keep(self, index: usize, mut stream: LiveStream, news: mpsc::UnboundedSender<News>) {
        loop {
            while let Ok(Some(update)) = stream.recv().await {
                if let StartLiveTailResponseStream::SessionUpdate(update) = update
                    && news.send(News::Events(update.session_results().to_vec())).is_err()
                {
                    return;
                }
            }
            match self.open().await {
                Ok(again) => stream = again,
                Err(_) => {
                    let _ = news.send(News::Closed(index));
                    return;
                }
            }
            if news.send(News::Reopened(index)).is_err() {
                return;
            }
        }
    }
}

/// Tries a call live tail needs up to 3 times, 10 s each: again after a
/// failure that may pass (a 5xx answer, throttling, a dropped connection),
/// not after one that says live tail is not available here (an unknown
/// operation, access denied), a quota, a missing group or a silent endpoint.
async fn live_tail_try<T, F, Fut>(call: F) -> Result<T, NoSession>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<T, CallError>>,
{
    let mut wait = Duration::from_millis(200);
    for attempt in 1..=3 {
        match tokio::time::timeout(Duration::from_secs(10), call()).await {
            Ok(Ok(answer)) => return Ok(answer),
            Ok(Err(e)) if e.is_quota_exceeded() => return Err(NoSession::Quota),
            Ok(Err(e)) if e.is_not_found() => return Err(NoSession::Missing),
            Ok(Err(e)) if attempt < 3 && (e.is_server_error() || e.is_throttling() || e.is_unreachable()) => {
                tokio::time::sleep(wait).await;
                wait *= 2;
            }
            _ => return Err(NoSession::Unavailable),
        }
    }
    Err(NoSession::Unavailable)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(stream: &str, timestamp: i64, message: &str) -> Event {
        Event {
            resource: "Fn".into(),
            stream: stream.into(),
            timestamp,
            message: message.into(),
            ingestion_time: timestamp,
            event_id: String::new(),
        }
    }

    fn messages(events: &[Event]) -> Vec<&str> {
        events.iter().map(|e| e.message.as_str()).collect()
    }

    #[test]
    fn a_cursor_admits_each_event_once_late_ones_included() {
        let mut cursor = Cursor::new(0);
        let first = cursor.admit(vec![event("s", 1000, "a"), event("s", 2000, "b")]);
        assert_eq!(messages(&first), ["a", "b"]);
        // A poll over the late window, and a live batch with an older event.
        let again = cursor.admit(vec![event("s", 1000, "a"), event("s", 2000, "b"), event("t", 1500, "late")]);
        assert_eq!(messages(&again), ["late"]);
        assert_eq!(cursor.newest, 2000);
    }

    #[test]
    fn identical_events_of_one_answer_are_each_printed() {
        let mut cursor = Cursor::new(0);
        let twice = cursor.admit(vec![event("s", 1000, "same"), event("s", 1000, "same")]);
        assert_eq!(twice.len(), 2);
        assert!(cursor.admit(vec![event("s", 1000, "same"), event("s", 1000, "same")]).is_empty());
        assert_eq!(cursor.admit(vec![event("s", 1000, "same"); 3]).len(), 1, "a third one arrived");
    }

    #[test]
    fn a_cursor_forgets_what_is_past_the_late_window() {
        let mut cursor = Cursor::new(0);
        cursor.admit(vec![event("s", 1000, "old")]);
        cursor.admit(vec![event("s", 1000 + 2 * LATE_WINDOW_MS + 1, "new")]);
        assert_eq!(cursor.seen.len(), 1);
    }

    #[test]
    fn an_outage_is_reported_once_a_second_call_fails() {
        let start = Instant::now();
        let later = |ms| start + Duration::from_millis(ms);
        let mut link = Link::default();
        assert!(!link.failed(start, later(10)), "one call without an answer may be a blip");
        assert_eq!(link.next_try(), Some(later(10) + POLL));
        assert!(!link.failed(later(5), later(20)), "sent before: no news");
        assert_eq!(link.answered(later(30)), None, "answered before it was reported: nothing to say");
        assert!(!link.failed(later(40), later(50)));
        assert!(link.failed(later(1050), later(1060)), "the next try failed too");
        assert!(!link.failed(later(2060), later(2070)));
        assert_eq!(link.next_try(), Some(later(2070) + 2 * POLL), "ever more slowly");
        assert_eq!(link.answered(later(5050)), Some(Duration::from_secs(5)));
        assert!(!link.is_down());
    }
}
