//! What tests/templates.rs still needs from the old shared support module.
//! The integration tests have their own (tests/it/support.rs); this file goes
//! when tests/templates.rs moves into the library's unit tests.

use std::path::PathBuf;

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}
