//! What a sync reports, one event per thing that happened: rendered for
//! people by default, and as one JSON object per line with `--output json`
//! so CI jobs and editors can follow a sync without parsing prose. Every
//! event names its kind in `event`; those about one resource carry
//! `resource`, `action`, `api`, `duration_ms` and `result`.

use serde::Serialize;

/// One event of a command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub(crate) enum Event {
    /// A build unit is ready (its dependencies and code, then its artifacts).
    Build {
        /// The resources it builds, e.g. `HelloFunction, WorldFunction`.
        resource: String,
        /// `build`.
        action: &'static str,
        /// Runtime or build method.
        runtime: String,
        /// Wall time.
        duration_ms: u128,
        /// `built` (something ran or was written) or `cached`.
        result: &'static str,
        /// The human line, as `accel build` prints it.
        #[serde(skip)]
        line: String,
    },
    /// An artifact was uploaded for a deploy.
    Upload {
        /// The object's key.
        resource: String,
        /// `upload`.
        action: &'static str,
        /// `PutObject`.
        api: &'static str,
        /// Size of the object.
        bytes: u64,
        /// Wall time of the upload.
        duration_ms: u128,
        /// `uploaded`.
        result: &'static str,
    },
    /// A CloudFormation stack event, as the deploy streams them.
    Stack {
        /// Logical id.
        resource: String,
        /// Resource type.
        resource_type: String,
        /// e.g. `UPDATE_COMPLETE`.
        status: String,
        /// CloudFormation's reason, if any.
        reason: Option<String>,
    },
    /// The CloudFormation deploy of the stack ended.
    Deploy {
        /// The stack.
        resource: String,
        /// `create` or `update`.
        action: &'static str,
        /// `CreateStack` or `UpdateStack`.
        api: &'static str,
        /// Wall time from the call to the final status.
        duration_ms: u128,
        /// `created`, `updated` or `no changes`.
        result: &'static str,
    },
    /// A resource synced through its service's API (code, configuration,
    /// API definition, state machine definition).
    Sync {
        /// Full path of the resource.
        resource: String,
        /// What was sent: `code`, `config (Environment, MemorySize)` …
        action: String,
        /// The call that changes it, e.g. `UpdateFunctionCode`.
        api: &'static str,
        /// Time from the start of the action (or from the save, in watch mode).
        duration_ms: u128,
        /// `updated`, `hotswapped`, `unchanged` or `failed`.
        result: &'static str,
        /// Why it failed.
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    /// A log group's history was read (`accel logs` over several groups).
    Fetch {
        /// The log group.
        resource: String,
        /// `fetch`.
        action: &'static str,
        /// `FilterLogEvents`.
        api: &'static str,
        /// Events read.
        events: usize,
        /// Wall time, waits for the call budget included.
        duration_ms: u128,
        /// `fetched`.
        result: &'static str,
    },
    /// An output of the deployed stack.
    Output {
        /// Output key.
        key: String,
        /// Description, if any.
        description: Option<String>,
        /// Value.
        value: String,
    },
    /// The command is done.
    Done {
        /// `succeeded`.
        result: &'static str,
        /// Wall time of the command (of the sync, in watch mode).
        duration_ms: u128,
        /// Resources a code or config sync changed through the service
        /// APIs (0 after a CloudFormation deploy, whose `stack` events say
        /// what changed).
        updated: usize,
        /// Resources the sync found already up to date.
        unchanged: usize,
    },
    /// The command failed; the same text ends stderr as `Error: …`.
    Error {
        /// The error.
        message: String,
    },
}

/// Where an event's human form goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Human {
    /// A result, on stdout.
    Out(String),
    /// A message, on stderr.
    Note(String),
}

/// The header of the stack events table, sam's.
pub(crate) const EVENTS_HEADER: &str = "ResourceStatus                  ResourceType                               LogicalResourceId                        ResourceStatusReason";

impl Event {
    /// The event as people read it; `None` for events only JSON carries
    /// (the commands print their own summaries and errors).
    pub(crate) fn human(&self) -> Option<Human> {
        match self {
            Event::Build { line, .. } => Some(Human::Note(line.clone())),
            Event::Upload { resource, bytes, .. } => {
                Some(Human::Note(format!("Uploaded {resource} ({})", indicatif::HumanBytes(*bytes))))
            }
            Event::Fetch { resource, events, duration_ms, .. } => {
                Some(Human::Note(format!("Fetched {resource}: {events} events in {duration_ms} ms")))
            }
            Event::Stack { resource, resource_type, status, reason } => {
                let reason = reason.as_deref().unwrap_or("-");
                Some(Human::Out(format!("{status:<31} {resource_type:<42} {resource:<40} {reason}")))
            }
            Event::Sync { resource, action, duration_ms, result, .. } => {
                let what = match *result {
                    "updated" => "synced",
                    "hotswapped" => "hotswapped",
                    _ => return None,
                };
                Some(Human::Note(format!("{resource:<32} {action:<10} {what} in {duration_ms} ms")))
            }
            Event::Output { key, description, value } => {
                let description = description.as_deref().unwrap_or("-");
                Some(Human::Out(format!("Key         {key}\nDescription {description}\nValue       {value}\n")))
            }
            Event::Deploy { .. } | Event::Done { .. } | Event::Error { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_names_the_event_and_its_resource_fields() {
        let event = Event::Sync {
            resource: "Child/Fn".into(),
            action: "code".into(),
            api: "UpdateFunctionCode",
            duration_ms: 12,
            result: "updated",
            error: None,
        };
        assert_eq!(
            serde_json::to_string(&event).unwrap(),
            r#"{"event":"sync","resource":"Child/Fn","action":"code","api":"UpdateFunctionCode","duration_ms":12,"result":"updated"}"#
        );
        assert_eq!(event.human(), Some(Human::Note(format!("{:<32} {:<10} synced in 12 ms", "Child/Fn", "code"))));
    }

    #[test]
    fn unchanged_resources_are_json_only() {
        let event = Event::Sync {
            resource: "Fn".into(),
            action: "code".into(),
            api: "UpdateFunctionCode",
            duration_ms: 1,
            result: "unchanged",
            error: None,
        };
        assert_eq!(event.human(), None);
        let failed = Event::Sync {
            resource: "Fn".into(),
            action: "code".into(),
            api: "UpdateFunctionCode",
            duration_ms: 1,
            result: "failed",
            error: Some("boom".into()),
        };
        assert!(serde_json::to_string(&failed).unwrap().ends_with(r#""result":"failed","error":"boom"}"#));
    }
}
