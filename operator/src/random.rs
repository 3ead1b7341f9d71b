//! Secrets the operator generates: passwords, keys.

/// `len` characters drawn uniformly from `alphabet` with the OS's
/// randomness, for the secrets the operator generates (passwords, keys).
pub fn random_text(alphabet: &[u8], len: usize) -> String {
    let mut out = String::new();
    while out.len() < len {
        let mut bytes = [0u8; 64];
        getrandom::fill(&mut bytes).expect("the OS has randomness");
        // Rejection sampling keeps every character equally likely.
        let limit = 256 - 256 % alphabet.len();
        out.extend(
            bytes
                .iter()
                .filter(|b| usize::from(**b) < limit)
                .map(|b| alphabet[usize::from(*b) % alphabet.len()] as char),
        );
    }
    out.truncate(len);
    out
}
