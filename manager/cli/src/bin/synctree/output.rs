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
