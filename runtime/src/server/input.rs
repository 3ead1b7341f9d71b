//! What every piece of text a client sends is held to, in one place: the
//! limits, the characters refused, and the message naming what to fix.
//!
//! Two kinds of text:
//! - a **line** (a display name, an email, a token's name, an attribute):
//!   no control characters at all (U+0000–U+001F, U+007F–U+009F) and no
//!   bidirectional overrides (U+202A–U+202E, U+2066–U+2069), which would let
//!   a name read as another;
//! - **free text** (a message, a purpose, a header): line breaks and tabs are
//!   kept, every other control character is refused — never silently
//!   stripped, so what is stored is what was sent.
//!
//! Either is *blank* when it holds only white space and invisible characters
//! (zero-width spaces and joiners, the BOM, fillers): a required one that is
//! blank is refused as empty.
//!
//! The checks answer with the problem alone; the caller names the field
//! ([`at`]). Request bodies implement [`Valid`], which the API's `Body`
//! extractor runs before a handler sees them. The OpenAPI document states
//! the same rules: a field's schema says `format: line` (or `text`,
//! `text-or-empty`, `file-name`, `email-address`) and the document's
//! [`contract`](super::api::contract) turns that into the [`Kind::pattern`]
//! below, which a test holds to the checks character by character.

use super::error::ApiError;

/// A user's or a channel's display name, in characters.
pub const DISPLAY_NAME_MAX: usize = 64;
/// A channel's purpose or header, in characters.
pub const PURPOSE_MAX: usize = 1024;
/// An email address (RFC 5321's path limit).
pub const EMAIL_MAX: usize = 254;
/// A password, in characters: long enough for any passphrase, short enough
/// that hashing it costs what hashing any other does.
pub const PASSWORD_MAX: usize = 1024;
/// A personal access token's name.
pub const TOKEN_NAME_MAX: usize = 128;
/// An organisation's name.
pub const ORGANISATION_MAX: usize = 128;
/// A user's attributes: how many, a name's and a value's length, and how
/// many values a list holds.
pub const ATTRIBUTES_MAX: usize = 32;
pub const ATTRIBUTE_NAME_MAX: usize = 64;
pub const ATTRIBUTE_VALUE_MAX: usize = 256;
pub const ATTRIBUTE_LIST_MAX: usize = 32;
/// An attribute's name, as the document states it.
pub const ATTRIBUTE_NAME_PATTERN: &str = "^[A-Za-z][A-Za-z0-9_.-]{0,63}$";
/// A search query, in characters.
pub const SEARCH_MAX: usize = 256;
/// An id: a ULID, 26 Crockford base-32 characters.
pub const ID_PATTERN: &str = "^[0-9A-HJKMNP-TV-Z]{26}$";

/// An id this server made, in the OpenAPI document (where a list of ids
/// needs it as a schema).
pub struct Id;

impl utoipa::PartialSchema for Id {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some(ID_PATTERN))
            .into()
    }
}

impl utoipa::ToSchema for Id {}

/// A request that checks its own fields once deserialized.
pub trait Valid {
    /// `Err` names the first field to fix.
    fn valid(&self) -> Result<(), ApiError>;
}

/// An optional integer as JSON Schema has it: `3` or `3.0` alike (a
/// fraction, or a number past `i64`, is refused).
pub fn whole_number<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<i64>, D::Error> {
    use serde::Deserialize;
    let Some(number) = Option::<serde_json::Number>::deserialize(deserializer)? else {
        return Ok(None);
    };
    if let Some(n) = number.as_i64() {
        return Ok(Some(n));
    }
    match number.as_f64() {
        Some(f) if f.fract() == 0.0 && f >= i64::MIN as f64 && f < i64::MAX as f64 => {
            Ok(Some(f as i64))
        }
        _ => Err(serde::de::Error::custom(format!(
            "{number} is not a whole number this server can hold"
        ))),
    }
}

/// A page size: absent, or 1 to `max`.
pub fn limit(limit: Option<i64>, max: i64) -> Result<(), ApiError> {
    match limit {
        Some(n) if !(1..=max).contains(&n) => Err(ApiError::invalid(
            "limit",
            format!("limit is between 1 and {max}"),
        )),
        _ => Ok(()),
    }
}

/// Maps a problem to the 400 naming `field` (the problem reads after the
/// field's name: "displayName is at most 64 characters").
pub fn at(field: &'static str) -> impl Fn(String) -> ApiError {
    move |problem| ApiError::invalid(field, format!("{field} {problem}"))
}

/// Characters that show nothing: white space, zero-width characters, joiners,
/// the BOM, fillers and variation selectors.
fn invisible(c: char) -> bool {
    c.is_whitespace()
        || matches!(c,
            '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{17B4}'
            | '\u{17B5}' | '\u{180B}'..='\u{180F}' | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{206F}' | '\u{2800}' | '\u{3164}'
            | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}' | '\u{FFA0}')
}

/// [`invisible`] but white space, as a regular-expression class body.
const INVISIBLE: &str = r"\u00AD\u034F\u061C\u115F\u1160\u17B4\u17B5\u180B-\u180F\u200B-\u200F\u202A-\u202E\u2060-\u206F\u2800\u3164\uFE00-\uFE0F\uFEFF\uFFA0";
/// What a line refuses: control characters and bidirectional overrides.
const LINE_FORBIDS: &str = r"\u0000-\u001F\u007F-\u009F\u202A-\u202E\u2066-\u2069";
/// What free text refuses: control characters but tab, line feed and carriage return.
const TEXT_FORBIDS: &str = r"\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F";

/// The kinds of text a request carries, as the OpenAPI document names them
/// (`format`) and states them (`pattern`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// [`line`].
    Line,
    /// [`text`], required.
    Text,
    /// [`text`], optional.
    TextOrEmpty,
    /// [`file_name`].
    FileName,
    /// [`email`].
    Email,
}

impl Kind {
    pub const ALL: [Kind; 5] = [
        Kind::Line,
        Kind::Text,
        Kind::TextOrEmpty,
        Kind::FileName,
        Kind::Email,
    ];

    /// The `format` a schema names it by.
    pub fn format(self) -> &'static str {
        match self {
            Kind::Line => "line",
            Kind::Text => "text",
            Kind::TextOrEmpty => "text-or-empty",
            Kind::FileName => "file-name",
            Kind::Email => "email-address",
        }
    }

    /// The regular expression (ECMA-262 and Python alike) that accepts
    /// exactly what the check accepts, length aside (`maxLength`).
    pub fn pattern(self) -> String {
        match self {
            Kind::Line => {
                format!(r"^[^{LINE_FORBIDS}]*[^{LINE_FORBIDS}\s{INVISIBLE}][^{LINE_FORBIDS}]*$")
            }
            Kind::Text => {
                format!(r"^[^{TEXT_FORBIDS}]*[^{TEXT_FORBIDS}\s{INVISIBLE}][^{TEXT_FORBIDS}]*$")
            }
            Kind::TextOrEmpty => format!(r"^[^{TEXT_FORBIDS}]*$"),
            Kind::FileName => format!(
                r"^[^{LINE_FORBIDS}/\\]*[^{LINE_FORBIDS}/\\.\s{INVISIBLE}][^{LINE_FORBIDS}/\\]*$"
            ),
            Kind::Email => format!(
                r#"^[^{LINE_FORBIDS}\s"(),:;<>@\[\\\]]{{1,64}}@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{{0,61}}[A-Za-z0-9])?\.)+[A-Za-z0-9](?:[A-Za-z0-9-]{{0,61}}[A-Za-z0-9])?$"#
            ),
        }
    }

    /// The check itself, length aside.
    pub fn check(self, text: &str) -> Result<(), String> {
        match self {
            Kind::Line => line(text, usize::MAX),
            Kind::Text => self::text(text, usize::MAX, true),
            Kind::TextOrEmpty => self::text(text, usize::MAX, false),
            Kind::FileName => file_name(text, usize::MAX),
            Kind::Email => email(text),
        }
    }
}

/// Holds only white space and invisible characters (or nothing).
pub fn blank(text: &str) -> bool {
    text.chars().all(invisible)
}

fn bidi_override(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

fn describe(c: char) -> String {
    match c {
        '\0' => "U+0000 (NUL)".into(),
        c => format!("U+{:04X}", c as u32),
    }
}

fn length(text: &str, max: usize) -> Result<(), String> {
    let count = text.chars().count();
    if count > max {
        return Err(format!("is at most {max} characters ({count} sent)"));
    }
    Ok(())
}

/// A required single line of at most `max` characters.
pub fn line(text: &str, max: usize) -> Result<(), String> {
    if let Some(c) = text.chars().find(|&c| c.is_control() || bidi_override(c)) {
        return Err(format!(
            "holds the control character {}; a single line holds none",
            describe(c)
        ));
    }
    if blank(text) {
        return Err("cannot be empty (nor only invisible characters)".into());
    }
    length(text, max)
}

/// Free text of at most `max` characters: line breaks and tabs are kept;
/// `required` text may not be blank.
pub fn text(text: &str, max: usize, required: bool) -> Result<(), String> {
    if let Some(c) = text
        .chars()
        .find(|&c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Err(format!(
            "holds the control character {}; only line breaks and tabs are allowed",
            describe(c)
        ));
    }
    if required && blank(text) {
        return Err("cannot be empty (nor only invisible characters)".into());
    }
    length(text, max)
}

/// A file's name: a line, without slashes, with something in it besides
/// dots (so never `.` or `..`).
pub fn file_name(name: &str, max: usize) -> Result<(), String> {
    line(name, max)?;
    if name.contains(['/', '\\']) {
        return Err("holds a slash; a file name is a name, not a path".into());
    }
    if !name.chars().any(|c| c != '.' && !invisible(c)) {
        return Err("needs a visible character besides dots".into());
    }
    Ok(())
}

/// An email address: `local@domain`, the local part at most 64 characters
/// (no white space, quotes or `(),:;<>@[\]`), the domain's labels of ASCII
/// letters, digits and inner hyphens (an international domain in its
/// `xn--` form).
pub fn email(address: &str) -> Result<(), String> {
    line(address, EMAIL_MAX)?;
    let problem = || Err("is not an email address such as name@example.org".to_string());
    let Some((local, domain)) = address.rsplit_once('@') else {
        return problem();
    };
    let local_ok = (1..=64).contains(&local.chars().count())
        && local
            .chars()
            .all(|c| !c.is_whitespace() && !"\"(),:;<>@[\\]".contains(c));
    let domain_ok = domain.contains('.')
        && domain.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    if local_ok && domain_ok {
        Ok(())
    } else {
        problem()
    }
}

/// An id this server made: a ULID.
pub fn id(text: &str) -> Result<(), String> {
    let ok = text.len() == 26
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b.is_ascii_uppercase() && !b"ILOU".contains(&b)));
    if ok {
        Ok(())
    } else {
        Err("must be an id: 26 upper-case letters and digits (a ULID)".into())
    }
}

/// A user's attributes, which access policies read: at most
/// [`ATTRIBUTES_MAX`] names of a letter then letters, digits, `_`, `.` or
/// `-`; each value a string, a number, a boolean, or a list of strings.
pub fn attributes(map: &serde_json::Map<String, serde_json::Value>) -> Result<(), String> {
    use serde_json::Value;
    if map.len() > ATTRIBUTES_MAX {
        return Err(format!("hold at most {ATTRIBUTES_MAX} entries"));
    }
    for (name, value) in map {
        let name_ok = (1..=ATTRIBUTE_NAME_MAX).contains(&name.len())
            && name.as_bytes()[0].is_ascii_alphabetic()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
        if !name_ok {
            return Err(format!(
                "entry {name:?}: a name is 1-{ATTRIBUTE_NAME_MAX} letters, digits, '_', '.' or '-', starting with a letter"
            ));
        }
        let value_line = |text: &str| {
            line(text, ATTRIBUTE_VALUE_MAX).map_err(|problem| format!("entry {name:?} {problem}"))
        };
        match value {
            Value::String(text) => value_line(text)?,
            Value::Number(_) | Value::Bool(_) => {}
            Value::Array(items) if items.len() <= ATTRIBUTE_LIST_MAX => {
                for item in items {
                    match item {
                        Value::String(text) => value_line(text)?,
                        _ => return Err(format!("entry {name:?}: a list holds strings only")),
                    }
                }
            }
            Value::Array(_) => {
                return Err(format!(
                    "entry {name:?}: a list holds at most {ATTRIBUTE_LIST_MAX} values"
                ))
            }
            Value::Null | Value::Object(_) => {
                return Err(format!(
                    "entry {name:?}: a value is a string, a number, a boolean or a list of strings"
                ))
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_refuses_control_characters_and_overrides() {
        assert!(line("Alice Martin", 64).is_ok());
        assert!(line("Zoë (🇫🇷)", 64).is_ok());
        for bad in [
            "a\u{0}b",
            "a\nb",
            "tab\there",
            "\u{7f}",
            "\u{9b}x",
            "adm\u{202E}nim",
        ] {
            assert!(line(bad, 64).is_err(), "{bad:?}");
        }
        assert!(
            line(&"é".repeat(64), 64).is_ok(),
            "the limit counts characters"
        );
        let too_long = line(&"é".repeat(65), 64).unwrap_err();
        assert!(
            too_long.contains("at most 64 characters (65 sent)"),
            "{too_long}"
        );
    }

    #[test]
    fn only_invisible_characters_is_empty() {
        for empty in [
            "",
            "   ",
            "\u{200B}\u{200B}",
            "\u{FEFF}",
            " \u{3164} ",
            "\u{2060}",
        ] {
            assert!(blank(empty), "{empty:?}");
            assert!(text(empty, 100, true).is_err(), "{empty:?}");
            assert!(line(empty, 100).is_err(), "{empty:?}");
        }
        assert!(!blank("\u{200B}a"));
        assert!(
            text("", 100, false).is_ok(),
            "optional free text may be empty"
        );
    }

    #[test]
    fn free_text_keeps_line_breaks_and_tabs_only() {
        assert!(text("line one\r\nline two\tindented", 100, true).is_ok());
        let nul = text("a\u{0}b", 100, true).unwrap_err();
        assert!(nul.contains("U+0000"), "{nul}");
        assert!(text("bell\u{7}", 100, true).is_err());
        assert!(text("escape\u{1b}[31m", 100, true).is_err());
    }

    #[test]
    fn emails_are_addresses() {
        for ok in [
            "alice@example.org",
            "a.b+tag@mail.example.co.uk",
            "zoë@xn--exmple-cua.fr",
        ] {
            assert!(email(ok).is_ok(), "{ok}");
        }
        for bad in [
            "alice",
            "alice@",
            "@example.org",
            "alice@localhost",
            "al ice@example.org",
            "alice@-bad.org",
            "alice@exa_mple.org",
            "alice@example..org",
            "a\u{0}@example.org",
            "zoë@exämple.fr",
        ] {
            assert!(email(bad).is_err(), "{bad}");
        }
        assert!(email(&format!("{}@example.org", "a".repeat(250))).is_err());
    }

    /// The document's patterns accept exactly what the checks accept: every
    /// character of the Basic Multilingual Plane alone, beside a letter and
    /// beside a dot, a few astral ones, and in an email's every part.
    #[test]
    fn the_documented_patterns_are_the_checks() {
        let mut corpus: Vec<String> = vec![String::new(), ".".into(), "..".into(), "a.".into()];
        let chars = (0u32..0x3400)
            .chain(0xFDF0..0x10000)
            .chain([0x1F600, 0x1D173, 0xE0001, 0x10FFFD])
            .filter_map(char::from_u32);
        for c in chars {
            corpus.extend([
                c.to_string(),
                format!("a{c}"),
                format!("{c}."),
                format!("{c}{c}"),
                format!("{c}@example.org"),
                format!("ab@ex{c}mple.org"),
                format!("a{c}b@example.org"),
            ]);
        }
        for kind in Kind::ALL {
            let pattern = regex::Regex::new(&kind.pattern()).expect("the pattern compiles");
            let disagreements: Vec<String> = corpus
                .iter()
                .filter(|s| pattern.is_match(s) != kind.check(s).is_ok())
                .map(|s| format!("{s:?}"))
                .take(10)
                .collect();
            assert!(disagreements.is_empty(), "{kind:?}: {disagreements:?}");
        }
    }

    #[test]
    fn ids_are_ulids() {
        assert!(id(&crate::server::db::new_id()).is_ok());
        for bad in [
            "",
            "nope",
            "01ARZ3NDEKTSV4RRFFQ69G5FAVX",
            "01arz3ndektsv4rrffq69g5fav",
            "01ARZ3NDEKTSV4RRFFQ69G5FAI",
            "01ARZ3NDEKTSV4RRFFQ69G5FA\u{0}",
        ] {
            assert!(id(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn attributes_are_bounded_names_and_simple_values() {
        let ok = serde_json::json!({"nation": "FR", "clearance": 3, "nato": true, "caveats": ["REL FVEY"]});
        assert!(attributes(ok.as_object().unwrap()).is_ok());
        for bad in [
            serde_json::json!({"": "x"}),
            serde_json::json!({"1st": "x"}),
            serde_json::json!({"na tion": "x"}),
            serde_json::json!({"nation": "F\u{0}R"}),
            serde_json::json!({"nation": "x".repeat(ATTRIBUTE_VALUE_MAX + 1)}),
            serde_json::json!({"nation": null}),
            serde_json::json!({"nation": {"deep": 1}}),
            serde_json::json!({"caveats": [1]}),
            serde_json::json!({"caveats": vec!["a"; ATTRIBUTE_LIST_MAX + 1]}),
        ] {
            assert!(attributes(bad.as_object().unwrap()).is_err(), "{bad}");
        }
        let many: serde_json::Map<_, _> = (0..=ATTRIBUTES_MAX)
            .map(|i| (format!("a{i}"), serde_json::json!("x")))
            .collect();
        assert!(attributes(&many).is_err());
    }
}
