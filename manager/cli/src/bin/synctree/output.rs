//! Writing to stdout without panicking when it is gone.

use std::io::Write;

use crate::error::CliError;

/// Writes `text` to stdout, failing (instead of panicking like `print!`) when
/// stdout is gone.
pub(crate) fn emit(text: &str) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(CliError::Output)
}

/// Writes `bytes` to stdout as they are (an export's lines).
pub(crate) fn emit_bytes(bytes: &[u8]) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .map_err(CliError::Output)
}
