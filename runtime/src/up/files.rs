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
