//! What of a message is translated and what is kept as written: code
//! blocks, inline code, URLs, @mentions, ~channel links, :emoji: and line
//! breaks are kept; the words between them are translated, their
//! surrounding white space kept too.

/// A piece of a message.
#[derive(Debug, PartialEq, Eq)]
pub enum Piece<'a> {
    /// Words to translate.
    Words(&'a str),
    /// Kept exactly as written.
    Kept(&'a str),
}

fn word_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-')
}

/// The length of what is kept at the start of `rest` (`at_word_start`:
/// whether a word may begin there), or 0.
fn kept(rest: &str, at_word_start: bool) -> usize {
    let bytes = rest.as_bytes();
    if let Some(code) = rest.strip_prefix("```") {
        return code.find("```").map_or(rest.len(), |end| end + 6);
    }
    match bytes[0] {
        b'\n' => 1,
        b'`' => rest[1..].find('`').map_or(0, |end| end + 2),
        b'@' | b'~' if at_word_start => {
            let name = bytes[1..].iter().take_while(|c| word_char(**c)).count();
            if name > 0 {
                name + 1
            } else {
                0
            }
        }
        b':' => {
            let name = bytes[1..]
                .iter()
                .take_while(|c| {
                    c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'_' | b'+' | b'-')
                })
                .count();
            if name > 0 && bytes.get(name + 1) == Some(&b':') {
                name + 2
            } else {
                0
            }
        }
        b'h' if at_word_start && (rest.starts_with("http://") || rest.starts_with("https://")) => {
            rest.find(|c: char| c.is_whitespace() || c == ')' || c == '>')
                .unwrap_or(rest.len())
        }
        _ => 0,
    }
}

/// `message` as pieces to translate and pieces to keep, in order.
pub fn pieces(message: &str) -> Vec<Piece<'_>> {
    let mut pieces = Vec::new();
    let mut words_start = 0;
    let mut i = 0;
    while i < message.len() {
        let at_word_start =
            i == 0 || !word_char(message.as_bytes()[i - 1]) && message.as_bytes()[i - 1] != b'/';
        let length = kept(&message[i..], at_word_start);
        if length == 0 {
            i += message[i..].chars().next().map_or(1, char::len_utf8);
            continue;
        }
        if words_start < i {
            pieces.push(Piece::Words(&message[words_start..i]));
        }
        pieces.push(Piece::Kept(&message[i..i + length]));
        i += length;
        words_start = i;
    }
    if words_start < message.len() {
        pieces.push(Piece::Words(&message[words_start..]));
    }
    pieces
}

/// Whether `words` hold anything to translate (letters).
pub fn has_words(words: &str) -> bool {
    words.chars().any(char::is_alphabetic)
}

/// `words` split into its leading white space, its core and its trailing
/// white space, so the translation of the core can be put back between them.
pub fn trimmed(words: &str) -> (&str, &str, &str) {
    let core = words.trim();
    let start = words.len() - words.trim_start().len();
    (&words[..start], core, &words[start + core.len()..])
}

#[cfg(test)]
mod tests {
    use super::{Piece::*, *};

    #[test]
    fn code_links_mentions_and_emoji_are_kept() {
        let message = "Hi @bob.smith, see ~ops and https://x.example/a?b=1 now :+1:\n```\nlet x = 1;\n```\nrun `make test` please";
        assert_eq!(
            pieces(message),
            [
                Words("Hi "),
                Kept("@bob.smith"),
                Words(", see "),
                Kept("~ops"),
                Words(" and "),
                Kept("https://x.example/a?b=1"),
                Words(" now "),
                Kept(":+1:"),
                Kept("\n"),
                Kept("```\nlet x = 1;\n```"),
                Kept("\n"),
                Words("run "),
                Kept("`make test`"),
                Words(" please"),
            ]
        );
        // An address is not a mention, and a lone colon is words.
        assert_eq!(
            pieces("mail j@x.org at 10:30"),
            [Words("mail j@x.org at 10:30")]
        );
        assert_eq!(trimmed("  la casa \t"), ("  ", "la casa", " \t"));
    }
}
