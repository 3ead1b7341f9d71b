//! The files `entente up` keeps for a workspace: secrets made once and kept,
//! readable only by their owner.

use std::{io::Write as _, path::Path};

use super::UpError;

/// The text in `path`, made (random, `len` characters) on first use and
/// kept after, readable only by its owner.
pub(crate) fn secret_text(path: &Path, len: usize) -> Result<String, UpError> {
    if let Ok(text) = std::fs::read_to_string(path) {
        return Ok(text.trim().to_string());
    }
    let mut bytes = vec![0u8; len];
    getrandom::fill(&mut bytes).map_err(|e| UpError(format!("no randomness: {e}")))?;
    const ALPHABET: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let text: String = bytes
        .iter()
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect();
    write_private(path, text.as_bytes())?;
    Ok(text)
}

pub(crate) fn write_private(path: &Path, contents: &[u8]) -> Result<(), UpError> {
    use std::os::unix::fs::OpenOptionsExt;
    let fail = |e: std::io::Error| UpError(format!("{}: {e}", path.display()));
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(fail)?;
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(fail)?;
    file.write_all(contents).map_err(fail)
}

/// A log past this size is moved aside (to `NAME.1`, replacing the one
/// there) when a run starts.
const LOG_ROTATE_BYTES: u64 = 64 << 20;

/// The log at `path`, opened to append — what earlier runs wrote (the
/// reason one crashed) is kept — after a line marking this run's start; a
/// log past [`LOG_ROTATE_BYTES`] is moved aside first.
pub(crate) fn open_log(path: &Path) -> Result<std::fs::File, UpError> {
    let fail = |e: std::io::Error| UpError(format!("{}: {e}", path.display()));
    if std::fs::metadata(path).is_ok_and(|m| m.len() > LOG_ROTATE_BYTES) {
        let mut aside = path.as_os_str().to_owned();
        aside.push(".1");
        std::fs::rename(path, aside).map_err(fail)?;
    }
    let mut log = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .map_err(fail)?;
    writeln!(
        log,
        "--- entente up started this at {} ---",
        chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    )
    .map_err(fail)?;
    Ok(log)
}
