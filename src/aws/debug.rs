//! `--debug`: one line per AWS call — service, operation, HTTP status,
//! duration and attempts — from an SDK interceptor, so every call of every
//! client is covered. Only what the SDK's metadata names is printed: never
//! a request, a header or a credential.

use std::time::Instant;

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeSerializationInterceptorContextRef, BeforeTransmitInterceptorContextRef, FinalizerInterceptorContextRef,
};
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::{ConfigBag, Storable, StoreReplace};

use crate::printer::Printer;

/// Logs each call through the printer's debug lines.
#[derive(Debug, Clone)]
pub(crate) struct CallLog {
    printer: Printer,
}

impl CallLog {
    /// A log into `printer`.
    pub(crate) fn new(printer: &Printer) -> CallLog {
        CallLog { printer: printer.clone() }
    }
}

#[derive(Debug, Clone)]
struct Started(Instant);

impl Storable for Started {
    type Storer = StoreReplace<Self>;
}

#[derive(Debug, Clone)]
struct Attempts(u32);

impl Storable for Attempts {
    type Storer = StoreReplace<Self>;
}

impl Intercept for CallLog {
    fn name(&self) -> &'static str {
        "accel-call-log"
    }

    fn read_before_execution(
        &self,
        _: &BeforeSerializationInterceptorContextRef<'_>,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        cfg.interceptor_state().store_put(Started(Instant::now()));
        Ok(())
    }

    fn read_before_attempt(
        &self,
        _: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let attempts = cfg.load::<Attempts>().map_or(0, |a| a.0) + 1;
        cfg.interceptor_state().store_put(Attempts(attempts));
        Ok(())
    }

    fn read_after_execution(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let (service, operation) = cfg.load::<Metadata>().map_or(("?", "?"), |m| (m.service(), m.name()));
        let millis = cfg.load::<Started>().map_or(0, |s| s.0.elapsed().as_millis());
        let attempts = cfg.load::<Attempts>().map_or(0, |a| a.0);
        let answer = match (context.response(), context.output_or_error()) {
            (Some(response), _) => format!("HTTP {}", response.status().as_u16()),
            (None, Some(Err(_))) => "no answer".to_string(),
            (None, _) => "done".to_string(),
        };
        self.printer.debug(format_args!("{service} {operation}: {answer} in {millis} ms, {attempts} attempt(s)"));
        Ok(())
    }
}
