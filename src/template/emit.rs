//! Writes a template as sam writes its built templates, byte for byte:
//! PyYAML's `yaml.dump(default_flow_style=False)` with sam's representers
//! (samcli/yamlhelper.py): block style, indent 2, lines folded at 80
//! columns, ASCII only (anything else escaped in double quotes), keys in
//! the template's order, strings starting with `0` single-quoted.
//!
//! A port of the parts of PyYAML's `Emitter` those settings reach, kept
//! close to the original (same state variables, same decisions) so that
//! the two can be read side by side; anchors, tags and flow collections
//! other than `{}` and `[]` never occur in a dumped template.

use serde_json::Value;

/// Line width at which PyYAML folds plain and quoted scalars.
const BEST_WIDTH: usize = 80;
/// Indentation step.
const BEST_INDENT: usize = 2;

/// The YAML text sam would write for `value`.
pub(crate) fn to_yaml(value: &Value) -> String {
    let mut emitter = Emitter::default();
    emitter.node(value, Context::Root);
    // expect_document_end: end the last line.
    emitter.indent = None;
    emitter.write_indent();
    emitter.out
}

/// Where a node sits: decides sequence indentation and scalar styles.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Context {
    Root,
    Sequence,
    Mapping,
    /// A mapping key written as `key: value`.
    SimpleKey,
}

/// How a scalar is written.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Style {
    Plain,
    Single,
    Double,
}

/// PyYAML's `ScalarAnalysis`, for the fields its style choice reads.
#[derive(Debug)]
struct Analysis {
    empty: bool,
    multiline: bool,
    allow_block_plain: bool,
    allow_single_quoted: bool,
}

/// A scalar as sam's representers give it to the emitter.
struct Scalar {
    text: Vec<char>,
    /// The style the representer asked for (`'` for strings starting with 0).
    requested: Option<Style>,
    /// Whether the text, written plain, reads back with the same type.
    implicit_plain: bool,
}

struct Emitter {
    out: String,
    indents: Vec<Option<usize>>,
    indent: Option<usize>,
    column: usize,
    /// The last character written was whitespace.
    whitespace: bool,
    /// Only indentation and indicators (`-`, `?`, `:`) are on this line so far.
    indention: bool,
}

impl Default for Emitter {
    fn default() -> Emitter {
        Emitter { out: String::new(), indents: Vec::new(), indent: None, column: 0, whitespace: true, indention: true }
    }
}

impl Emitter {
    fn node(&mut self, value: &Value, context: Context) {
        match value {
            Value::Object(map) if map.is_empty() => self.empty_collection("{", "}"),
            Value::Array(items) if items.is_empty() => self.empty_collection("[", "]"),
            Value::Array(items) => {
                // A sequence that is a mapping's value is not indented.
                let indentless = context == Context::Mapping && !self.indention;
                self.increase_indent(false, indentless);
                for item in items {
                    self.write_indent();
                    self.write_indicator("-", true, false, true);
                    self.node(item, Context::Sequence);
                }
                self.indent = self.indents.pop().flatten();
            }
            Value::Object(map) => {
                self.increase_indent(false, false);
                for (key, value) in map {
                    self.write_indent();
                    let key = represent_str(key);
                    let analysis = analyze(&key.text);
                    // PyYAML counts the key's prepared tag (`!!str`, 5) against its 128 limit.
                    if key.text.len() + 5 < 128 && !analysis.empty && !analysis.multiline {
                        self.scalar(&key, Context::SimpleKey);
                        self.write_indicator(":", false, false, false);
                    } else {
                        self.write_indicator("?", true, false, true);
                        self.scalar(&key, Context::Mapping);
                        self.write_indent();
                        self.write_indicator(":", true, false, true);
                    }
                    self.node(value, Context::Mapping);
                }
                self.indent = self.indents.pop().flatten();
            }
            scalar => self.scalar(&represent(scalar), context),
        }
    }

    /// `{}` or `[]`: the one flow style a block dump writes.
    fn empty_collection(&mut self, open: &str, close: &str) {
        self.write_indicator(open, true, true, false);
        self.increase_indent(true, false);
        self.indent = self.indents.pop().flatten();
        self.write_indicator(close, false, false, false);
    }

    fn scalar(&mut self, scalar: &Scalar, context: Context) {
        self.increase_indent(true, false);
        let analysis = analyze(&scalar.text);
        let simple_key = context == Context::SimpleKey;
        let split = !simple_key;
        match choose_style(scalar, &analysis, simple_key) {
            Style::Plain => self.write_plain(&scalar.text, split),
            Style::Single => self.write_single_quoted(&scalar.text, split),
            Style::Double => self.write_double_quoted(&scalar.text, split),
        }
        self.indent = self.indents.pop().flatten();
    }

    fn increase_indent(&mut self, flow: bool, indentless: bool) {
        self.indents.push(self.indent);
        self.indent = match self.indent {
            None if flow => Some(BEST_INDENT),
            None => Some(0),
            Some(indent) if !indentless => Some(indent + BEST_INDENT),
            same => same,
        };
    }

    fn write(&mut self, text: &[char]) {
        self.column += text.len();
        self.out.extend(text);
    }

    fn write_str(&mut self, text: &str) {
        self.column += text.chars().count();
        self.out.push_str(text);
    }

    fn write_indicator(&mut self, indicator: &str, need_whitespace: bool, whitespace: bool, indention: bool) {
        if !self.whitespace && need_whitespace {
            self.write_str(" ");
        }
        self.write_str(indicator);
        self.whitespace = whitespace;
        self.indention = self.indention && indention;
    }

    fn write_indent(&mut self) {
        let indent = self.indent.unwrap_or(0);
        if !self.indention || self.column > indent || (self.column == indent && !self.whitespace) {
            self.write_line_break(None);
        }
        if self.column < indent {
            self.whitespace = true;
            let pad = " ".repeat(indent - self.column);
            self.write_str(&pad);
        }
    }

    fn write_line_break(&mut self, data: Option<char>) {
        self.out.push(data.unwrap_or('\n'));
        self.whitespace = true;
        self.indention = true;
        self.column = 0;
    }

    /// Line breaks inside a scalar, as PyYAML writes them: one more `\n`
    /// before a run that starts with `\n` (a single break folds to a space).
    fn write_breaks(&mut self, breaks: &[char]) {
        if breaks.first() == Some(&'\n') {
            self.write_line_break(None);
        }
        for &br in breaks {
            self.write_line_break((br != '\n').then_some(br));
        }
        self.write_indent();
    }

    fn write_plain(&mut self, text: &[char], split: bool) {
        if text.is_empty() {
            return;
        }
        if !self.whitespace {
            self.write_str(" ");
        }
        self.whitespace = false;
        self.indention = false;
        let (mut spaces, mut breaks) = (false, false);
        let (mut start, mut end) = (0, 0);
        while end <= text.len() {
            let ch = text.get(end).copied();
            if spaces {
                if ch != Some(' ') {
                    if start + 1 == end && self.column > BEST_WIDTH && split {
                        self.write_indent();
                        self.whitespace = false;
                        self.indention = false;
                    } else {
                        self.write(&text[start..end]);
                    }
                    start = end;
                }
            } else if breaks {
                if !ch.is_some_and(is_break) {
                    self.write_breaks(&text[start..end]);
                    self.whitespace = false;
                    self.indention = false;
                    start = end;
                }
            } else if ch.is_none_or(|c| c == ' ' || is_break(c)) {
                self.write(&text[start..end]);
                start = end;
            }
            if let Some(c) = ch {
                spaces = c == ' ';
                breaks = is_break(c);
            }
            end += 1;
        }
    }

    fn write_single_quoted(&mut self, text: &[char], split: bool) {
        self.write_indicator("'", true, false, false);
        let (mut spaces, mut breaks) = (false, false);
        let (mut start, mut end) = (0, 0);
        while end <= text.len() {
            let ch = text.get(end).copied();
            if spaces {
                if ch != Some(' ') {
                    if start + 1 == end && self.column > BEST_WIDTH && split && start != 0 && end != text.len() {
                        self.write_indent();
                    } else {
                        self.write(&text[start..end]);
                    }
                    start = end;
                }
            } else if breaks {
                if !ch.is_some_and(is_break) {
                    self.write_breaks(&text[start..end]);
                    start = end;
                }
            } else if ch.is_none_or(|c| c == ' ' || c == '\'' || is_break(c)) && start < end {
                self.write(&text[start..end]);
                start = end;
            }
            if ch == Some('\'') {
                self.write_str("''");
                start = end + 1;
            }
            if let Some(c) = ch {
                spaces = c == ' ';
                breaks = is_break(c);
            }
            end += 1;
        }
        self.write_indicator("'", false, false, false);
    }

    fn write_double_quoted(&mut self, text: &[char], split: bool) {
        self.write_indicator("\"", true, false, false);
        let (mut start, mut end) = (0, 0);
        while end <= text.len() {
            let ch = text.get(end).copied();
            if ch.is_none_or(|c| {
                matches!(c, '"' | '\\' | '\u{85}' | '\u{2028}' | '\u{2029}' | '\u{FEFF}') || !is_printable_ascii(c)
            }) {
                if start < end {
                    self.write(&text[start..end]);
                    start = end;
                }
                if let Some(c) = ch {
                    self.write_str(&escape(c));
                    start = end + 1;
                }
            }
            if 0 < end
                && end + 1 < text.len()
                && (ch == Some(' ') || start >= end)
                // After an escape `start` is past `end`: PyYAML's width test then counts one less.
                && (self.column + end) as isize - start as isize > BEST_WIDTH as isize
                && split
            {
                let mut data: String = text[start.min(end)..end].iter().collect();
                data.push('\\');
                if start < end {
                    start = end;
                }
                self.write_str(&data);
                self.write_indent();
                self.whitespace = false;
                self.indention = false;
                if text.get(start) == Some(&' ') {
                    self.write_str("\\");
                }
            }
            end += 1;
        }
        self.write_indicator("\"", false, false, false);
    }
}

fn is_break(c: char) -> bool {
    matches!(c, '\n' | '\u{85}' | '\u{2028}' | '\u{2029}')
}

fn is_printable_ascii(c: char) -> bool {
    ('\x20'..='\x7E').contains(&c)
}

/// PyYAML's escape for a character a double-quoted scalar cannot hold as is.
fn escape(c: char) -> String {
    let short = match c {
        '\0' => "0",
        '\x07' => "a",
        '\x08' => "b",
        '\t' => "t",
        '\n' => "n",
        '\x0B' => "v",
        '\x0C' => "f",
        '\r' => "r",
        '\x1B' => "e",
        '"' => "\"",
        '\\' => "\\",
        '\u{85}' => "N",
        '\u{A0}' => "_",
        '\u{2028}' => "L",
        '\u{2029}' => "P",
        _ => "",
    };
    match c as u32 {
        _ if !short.is_empty() => format!("\\{short}"),
        n @ ..=0xFF => format!("\\x{n:02X}"),
        n @ ..=0xFFFF => format!("\\u{n:04X}"),
        n => format!("\\U{n:08X}"),
    }
}

/// PyYAML's `choose_scalar_style` for a block-level scalar.
fn choose_style(scalar: &Scalar, analysis: &Analysis, simple_key: bool) -> Style {
    if scalar.requested.is_none()
        && scalar.implicit_plain
        && !(simple_key && (analysis.empty || analysis.multiline))
        && analysis.allow_block_plain
    {
        return Style::Plain;
    }
    if matches!(scalar.requested, None | Some(Style::Single))
        && analysis.allow_single_quoted
        && !(simple_key && analysis.multiline)
    {
        return Style::Single;
    }
    Style::Double
}

/// PyYAML's `analyze_scalar`, with `allow_unicode` off.
fn analyze(text: &[char]) -> Analysis {
    if text.is_empty() {
        return Analysis { empty: true, multiline: false, allow_block_plain: true, allow_single_quoted: true };
    }
    let is_space = |c: char| matches!(c, '\0' | ' ' | '\t' | '\r') || is_break(c);
    let starts_with = |prefix: &str| text.iter().copied().take(3).eq(prefix.chars());
    let mut block_indicators = starts_with("---") || starts_with("...");
    let (mut line_breaks, mut special) = (false, false);
    let (mut leading_space, mut leading_break, mut trailing_space, mut trailing_break) = (false, false, false, false);
    let (mut break_space, mut space_break) = (false, false);
    let (mut previous_space, mut previous_break) = (false, false);
    let mut preceded_by_whitespace = true;
    let mut followed_by_whitespace = text.len() == 1 || is_space(text[1]);
    for (index, &ch) in text.iter().enumerate() {
        if index == 0 {
            if "#,[]{}&*!|>'\"%@`".contains(ch) || ("?:-".contains(ch) && followed_by_whitespace) {
                block_indicators = true;
            }
        } else if (ch == ':' && followed_by_whitespace) || (ch == '#' && preceded_by_whitespace) {
            block_indicators = true;
        }
        if is_break(ch) {
            line_breaks = true;
        }
        if !(ch == '\n' || is_printable_ascii(ch)) {
            special = true;
        }
        if ch == ' ' {
            leading_space |= index == 0;
            trailing_space |= index == text.len() - 1;
            break_space |= previous_break;
            (previous_space, previous_break) = (true, false);
        } else if is_break(ch) {
            leading_break |= index == 0;
            trailing_break |= index == text.len() - 1;
            space_break |= previous_space;
            (previous_space, previous_break) = (false, true);
        } else {
            (previous_space, previous_break) = (false, false);
        }
        preceded_by_whitespace = is_space(ch);
        followed_by_whitespace = index + 2 >= text.len() || is_space(text[index + 2]);
    }
    let mut allow_block_plain =
        !(leading_space || leading_break || trailing_space || trailing_break || line_breaks || block_indicators);
    let mut allow_single_quoted = true;
    if break_space || space_break || special {
        allow_block_plain = false;
        allow_single_quoted = false;
    }
    Analysis { empty: false, multiline: line_breaks, allow_block_plain, allow_single_quoted }
}

/// sam's `string_representer`: strings starting with `0` are single-quoted
/// so that account ids stay strings.
fn represent_str(text: &str) -> Scalar {
    Scalar {
        text: text.chars().collect(),
        requested: text.starts_with('0').then_some(Style::Single),
        implicit_plain: resolves_to_str(text),
    }
}

/// PyYAML's SafeRepresenter for the other JSON values.
fn represent(value: &Value) -> Scalar {
    let text = match value {
        Value::String(s) => return represent_str(s),
        Value::Null => "null".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => match n.as_f64() {
            Some(f) if !n.is_i64() && !n.is_u64() => python_float(f),
            _ => n.to_string(),
        },
        Value::Array(_) | Value::Object(_) => unreachable!("collections are not scalars"),
    };
    Scalar { text: text.chars().collect(), requested: None, implicit_plain: true }
}

/// `repr(f).lower()` as PyYAML's `represent_float` writes it: shortest
/// round-trip digits, exponent form below 1e-4 and from 1e16, and a `.0`
/// added to a mantissa without a point (`1.0e+16`).
fn python_float(f: f64) -> String {
    if f.is_nan() {
        return ".nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { ".inf".into() } else { "-.inf".into() };
    }
    let sci = format!("{f:e}");
    let (mantissa, exponent) = sci.split_once('e').expect("`{:e}` always has an exponent");
    let exponent: i32 = exponent.parse().expect("`{:e}` exponent is an integer");
    if (-4..16).contains(&exponent) {
        let fixed = format!("{f}");
        return if fixed.contains('.') { fixed } else { format!("{fixed}.0") };
    }
    let mantissa = if mantissa.contains('.') { mantissa.to_string() } else { format!("{mantissa}.0") };
    let sign = if exponent < 0 { '-' } else { '+' };
    format!("{mantissa}e{sign}{:02}", exponent.abs())
}

/// Whether PyYAML's YAML 1.1 resolver reads `text`, written plain, as a
/// string: not a bool, int, float, null, timestamp, merge key or `=`.
fn resolves_to_str(text: &str) -> bool {
    let b = text.as_bytes();
    let bools = ["yes", "Yes", "YES", "no", "No", "NO", "true", "True", "TRUE", "false", "False", "FALSE"];
    let more = ["on", "On", "ON", "off", "Off", "OFF", "~", "null", "Null", "NULL", "", "<<", "="];
    !(bools.contains(&text) || more.contains(&text) || is_int(b) || is_float(b) || is_timestamp(b))
}

/// A cursor over ASCII text, for the resolver's patterns.
struct Cursor<'a> {
    text: &'a [u8],
    at: usize,
}

impl Cursor<'_> {
    fn eat(&mut self, accept: impl Fn(u8) -> bool) -> bool {
        let ok = self.text.get(self.at).copied().is_some_and(accept);
        self.at += usize::from(ok);
        ok
    }
    fn eat_byte(&mut self, byte: u8) -> bool {
        self.eat(|c| c == byte)
    }
    /// Eats a run; always succeeds (a `*` in the pattern).
    fn skip(&mut self, accept: impl Fn(u8) -> bool) -> bool {
        while self.eat(&accept) {}
        true
    }
    /// Eats a run of at least one (a `+` in the pattern).
    fn some(&mut self, accept: impl Fn(u8) -> bool) -> bool {
        self.eat(&accept) && self.skip(accept)
    }
    /// `[0-9][0-9]?`
    fn one_or_two_digits(&mut self) -> bool {
        let first = self.eat(digit);
        if first {
            self.eat(digit);
        }
        first
    }
    /// `[-+]?`: always succeeds.
    fn sign(&mut self) -> bool {
        self.eat(|c| c == b'+' || c == b'-');
        true
    }
    /// The rest is one of `words`.
    fn rest_is(&mut self, words: &[&str]) -> bool {
        let ok = words.iter().any(|w| self.text[self.at..] == *w.as_bytes());
        if ok {
            self.at = self.text.len();
        }
        ok
    }
    fn done(&self) -> bool {
        self.at == self.text.len()
    }
    /// `(?::[0-5]?[0-9])+`
    fn sexagesimal(&mut self) -> bool {
        let mut groups = 0;
        while self.text.get(self.at) == Some(&b':') {
            let digits = self.text[self.at + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
            self.at += match digits {
                0 => return false,
                1 => 2,
                _ if self.text[self.at + 1] <= b'5' => 3,
                _ => 2,
            };
            groups += 1;
        }
        groups > 0
    }
    /// `(?:[eE][-+][0-9]+)?`
    fn exponent(&mut self) -> bool {
        !self.eat(|c| c == b'e' || c == b'E') || (self.eat(|c| c == b'+' || c == b'-') && self.some(digit))
    }
}

fn digit(c: u8) -> bool {
    c.is_ascii_digit()
}

fn digit_or_underscore(c: u8) -> bool {
    c.is_ascii_digit() || c == b'_'
}

/// Whether one of `patterns` matches the whole of `text`.
fn matches_any(text: &[u8], patterns: &[fn(&mut Cursor) -> bool]) -> bool {
    patterns.iter().any(|pattern| {
        let mut c = Cursor { text, at: 0 };
        pattern(&mut c) && c.done()
    })
}

/// PyYAML's int pattern: binary, octal, decimal, hex, sexagesimal.
fn is_int(text: &[u8]) -> bool {
    matches_any(
        text,
        &[
            |c| c.sign() && c.eat_byte(b'0') && c.eat_byte(b'b') && c.some(|x| matches!(x, b'0' | b'1' | b'_')),
            |c| c.sign() && c.eat_byte(b'0') && c.some(|x| matches!(x, b'0'..=b'7' | b'_')),
            |c| c.sign() && (c.eat_byte(b'0') || (c.eat(|x| matches!(x, b'1'..=b'9')) && c.skip(digit_or_underscore))),
            |c| c.sign() && c.eat_byte(b'0') && c.eat_byte(b'x') && c.some(|x| x.is_ascii_hexdigit() || x == b'_'),
            |c| c.sign() && c.eat(|x| matches!(x, b'1'..=b'9')) && c.skip(digit_or_underscore) && c.sexagesimal(),
        ],
    )
}

/// PyYAML's float pattern (a point is required; an exponent is signed).
fn is_float(text: &[u8]) -> bool {
    matches_any(
        text,
        &[
            |c| {
                c.sign()
                    && c.eat(digit)
                    && c.skip(digit_or_underscore)
                    && c.eat_byte(b'.')
                    && c.skip(digit_or_underscore)
                    && c.exponent()
            },
            |c| c.eat_byte(b'.') && c.eat(digit) && c.skip(digit_or_underscore) && c.exponent(),
            |c| {
                c.sign()
                    && c.eat(digit)
                    && c.skip(digit_or_underscore)
                    && c.sexagesimal()
                    && c.eat_byte(b'.')
                    && c.skip(digit_or_underscore)
            },
            |c| c.sign() && c.eat_byte(b'.') && c.rest_is(&["inf", "Inf", "INF"]),
            |c| c.eat_byte(b'.') && c.rest_is(&["nan", "NaN", "NAN"]),
        ],
    )
}

/// PyYAML's timestamp pattern: a date, or a date and a time.
fn is_timestamp(text: &[u8]) -> bool {
    matches_any(
        text,
        &[
            |c| {
                (0..4).all(|_| c.eat(digit))
                    && c.eat_byte(b'-')
                    && c.eat(digit)
                    && c.eat(digit)
                    && c.eat_byte(b'-')
                    && c.eat(digit)
                    && c.eat(digit)
            },
            |c| {
                (0..4).all(|_| c.eat(digit))
                    && c.eat_byte(b'-')
                    && c.one_or_two_digits()
                    && c.eat_byte(b'-')
                    && c.one_or_two_digits()
                    && (c.eat(|x| x == b'T' || x == b't') || c.some(|x| x == b' ' || x == b'\t'))
                    && c.one_or_two_digits()
                    && c.eat_byte(b':')
                    && c.eat(digit)
                    && c.eat(digit)
                    && c.eat_byte(b':')
                    && c.eat(digit)
                    && c.eat(digit)
                    && (!c.eat_byte(b'.') || c.skip(digit))
                    && timezone(c)
            },
        ],
    )
}

/// `(?:[ \t]*(?:Z|[-+][0-9][0-9]?(?::[0-9][0-9])?))?`
fn timezone(c: &mut Cursor) -> bool {
    let before = c.at;
    c.skip(|x| x == b' ' || x == b'\t');
    if c.eat_byte(b'Z') {
        return true;
    }
    if c.eat(|x| x == b'+' || x == b'-') {
        return c.one_or_two_digits() && (!c.eat_byte(b':') || (c.eat(digit) && c.eat(digit)));
    }
    c.at = before;
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Each text's type as PyYAML 6's resolver reads it, written plain.
    #[test]
    fn resolver_matches_pyyaml() {
        let strings = [
            "abc",
            "1e3",
            "0.5.0",
            "2012-10-17x",
            "1_000a",
            "yesno",
            "-",
            "._",
            "+.5",
            "-.5",
            "2012-1-1",
            "1:60",
            "09",
            "0:30",
            "-0b",
            ".e+1",
            "1.e5",
            "_1.0",
            "2001-12-14 21:59:43 ",
        ];
        for text in strings {
            assert!(resolves_to_str(text), "{text:?} reads as a string");
        }
        let others = [
            "yes",
            "Off",
            "~",
            "",
            "1",
            "-1",
            "+0",
            "1__",
            "0b101",
            "017",
            "0x1F",
            "1_000",
            "12:00",
            "190:20:30",
            "1.0",
            "1.",
            "1.5e+3",
            ".5",
            "+.inf",
            ".NaN",
            "2012-10-17",
            "2001-12-14t21:59:43.10-05:00",
            "2001-12-14 21:59:43.10 Z",
            "<<",
            "=",
        ];
        for text in others {
            assert!(!resolves_to_str(text), "{text:?} reads as another type");
        }
    }

    #[test]
    fn floats_as_python_repr() {
        let cases =
            [(1.0, "1.0"), (0.5, "0.5"), (100.0, "100.0"), (1e16, "1.0e+16"), (1.5e-5, "1.5e-05"), (0.0001, "0.0001")];
        for (f, text) in cases {
            assert_eq!(python_float(f), text);
        }
    }

    /// Expected texts are what PyYAML 6 (sam 1.170's) writes for the same data.
    #[test]
    fn writes_what_pyyaml_writes() {
        let value = json!({
            "Resources": {"F": {"Properties": {
                "Code": "line one\nline two\n",
                "Empty": {}, "List": [], "Id": "0123", "Date": "2012-10-17", "Yes": "yes",
                "Items": ["a", ["b", "c"], {"K": 1, "L": [true, null, 1.5]}],
                "Long": "word ".repeat(20).trim_end(),
                "Accent": "caf\u{e9} \u{1F600}",
                "Spaced": "a \nb",
            }}}
        });
        let expected = "Resources:\n  F:\n    Properties:\n      Code: 'line one\n\n        line two\n\n        '\n      Empty: {}\n      List: []\n      Id: '0123'\n      Date: '2012-10-17'\n      'Yes': 'yes'\n      Items:\n      - a\n      - - b\n        - c\n      - K: 1\n        L:\n        - true\n        - null\n        - 1.5\n      Long: word word word word word word word word word word word word word word\n        word word word word word word\n      Accent: \"caf\\xE9 \\U0001F600\"\n      Spaced: \"a \\nb\"\n";
        assert_eq!(to_yaml(&value), expected);
    }
}
