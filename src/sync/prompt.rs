//! sam's safety prompt (spec §2.2.1), remembered in the same
//! `~/.aws-sam/metadata.json`, so a stack confirmed in sam is confirmed in
//! accel and the other way round.

use std::io::{BufRead, Write};
use std::path::Path;

use md5::{Digest, Md5};
use serde_json::Value;

/// sam's warning, naming the tool that acts: accel.
pub(crate) const WARNING: &str = "accel will use the AWS Lambda, Amazon API Gateway, and AWS StepFunctions APIs to upload your code without performing a CloudFormation deployment. This will cause drift in your CloudFormation stack. **The sync command should only be used against a development stack**.";

/// The answer to the prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Consent {
    /// Go on: confirmed now.
    Proceed,
    /// Go on: confirmed before (sam still shows the warning).
    ConfirmedBefore,
    /// The user said no: stop, exit 0.
    Declined,
    /// End of input before an answer: sam prints `Aborted!` and exits 1.
    Aborted,
}

/// sam's key: md5 of the absolute template path followed by the stack name.
pub(crate) fn stack_key(template: &Path, stack_name: &str) -> String {
    hex::encode(Md5::digest(format!("{}{stack_name}", template.display())))
}

/// Asks, unless this template and stack were confirmed before. `input` is
/// read a line at a time: an empty line means yes, as in sam; end of input
/// means abort (so a closed or empty stdin never hangs or proceeds).
pub(crate) fn confirm(
    app_dir: &Path,
    template: &Path,
    stack_name: &str,
    input: &mut dyn BufRead,
    output: &mut dyn Write,
) -> std::io::Result<Consent> {
    let file = app_dir.join("metadata.json");
    let mut metadata: Value = std::fs::read(&file)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_else(|| Value::Object(Default::default()));
    let key = stack_key(template, stack_name);
    let known = metadata["accelerateOptInStacks"].as_array().is_some_and(|keys| keys.iter().any(|k| k == &key));
    if known {
        return Ok(Consent::ConfirmedBefore);
    }
    write!(
        output,
        "{WARNING}\nConfirm that you are synchronizing a development stack.\n\nEnter Y to proceed with the command, or enter N to cancel:\n [Y/n]: "
    )?;
    output.flush()?;
    loop {
        let mut line = String::new();
        if input.read_line(&mut line)? == 0 {
            writeln!(output, "\nAborted!")?;
            return Ok(Consent::Aborted);
        }
        match line.trim().to_ascii_lowercase().as_str() {
            "" | "y" | "yes" => break,
            "n" | "no" => return Ok(Consent::Declined),
            _ => write!(output, "Error: invalid input\n [Y/n]: ")?,
        }
    }
    let keys =
        metadata.as_object_mut().map(|m| m.entry("accelerateOptInStacks").or_insert_with(|| Value::Array(Vec::new())));
    if let Some(Value::Array(keys)) = keys {
        keys.push(Value::String(key));
    }
    let bytes = serde_json::to_vec_pretty(&metadata).unwrap_or_default();
    crate::files::write_atomic(&file, &bytes)?;
    Ok(Consent::Proceed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ask(dir: &Path, input: &str) -> (Consent, String) {
        let mut out = Vec::new();
        let consent = confirm(dir, Path::new("/p/template.yaml"), "blog", &mut input.as_bytes(), &mut out).unwrap();
        (consent, String::from_utf8(out).unwrap())
    }

    #[test]
    fn yes_is_remembered_in_sams_file() {
        let dir = tempfile::tempdir().unwrap();
        let (consent, shown) = ask(dir.path(), "\n");
        assert_eq!(consent, Consent::Proceed, "Enter accepts");
        assert!(shown.contains("Enter Y to proceed with the command, or enter N to cancel:\n [Y/n]: "));
        let saved: Value = serde_json::from_slice(&std::fs::read(dir.path().join("metadata.json")).unwrap()).unwrap();
        assert_eq!(saved["accelerateOptInStacks"][0], stack_key(Path::new("/p/template.yaml"), "blog"));
        // Confirmed before: no question, even with nothing to read.
        assert_eq!(ask(dir.path(), ""), (Consent::ConfirmedBefore, String::new()));
    }

    #[test]
    fn no_declines_and_end_of_input_aborts() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(ask(dir.path(), "n\n").0, Consent::Declined);
        let (consent, shown) = ask(dir.path(), "");
        assert_eq!(consent, Consent::Aborted);
        assert!(shown.ends_with("Aborted!\n"));
        assert_eq!(ask(dir.path(), "maybe\ny\n").0, Consent::Proceed);
        assert_eq!(ask(dir.path(), "").0, Consent::ConfirmedBefore, "the yes after an invalid answer is remembered");
    }
}
