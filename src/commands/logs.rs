//! `accel logs`: find the stack's log groups, then fetch or tail them.

use std::process::ExitCode;

use anyhow::Result;

use crate::aws::Aws;
use crate::logs::{self, Format, Item};
use crate::printer::Printer;
use crate::settings::LogsSettings;

pub(super) async fn run(settings: &LogsSettings, printer: &Printer) -> Result<ExitCode> {
    let request = &settings.request;
    let aws = Aws::load(&settings.aws, printer).await?;
    let (sources, unlogged) = logs::sources(&aws, request).await?;
    for note in unlogged {
        printer.note(note);
    }
    let format = Format { json: settings.json, color: printer.color(), filter: request.filter.clone() };
    if settings.tail {
        logs::tail(&aws, &sources, request, settings.include_traces, printer, &format).await?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut items: Vec<Item> =
        logs::fetch(&aws, &sources, request, printer).await?.into_iter().map(Item::Log).collect();
    if settings.include_traces {
        let end = request.end_ms.unwrap_or_else(crate::time::now_ms);
        items.extend(
            logs::fetch_traces(&aws, request.start_ms, end, &Default::default()).await?.into_iter().map(Item::Trace),
        );
        items.sort_by_key(Item::timestamp);
    }
    for item in &items {
        printer.out_raw(&format.render(item));
    }
    Ok(ExitCode::SUCCESS)
}
