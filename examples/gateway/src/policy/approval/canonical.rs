//! The JSON Canonicalization Scheme (RFC 8785), computed from the exact text a client sent.
//!
//! An approval is bound to the SHA-256 of the canonical form of the call's arguments, so the
//! canonical form must identify the arguments *as the upstream will read them*: two argument
//! texts that an upstream could read differently must never share a canonical form. Hence
//! the input is the raw JSON text (not a value already decoded into `f64`s), and text that is
//! not I-JSON (RFC 7493, which RFC 8785 §3.1 requires) is refused with [`NotCanonical`]
//! rather than silently normalised:
//!
//! - **duplicate member names** (RFC 7493 §2.3): parsers disagree on which one wins;
//! - **numbers not exactly a double's shortest form**: a number is accepted when its decimal
//!   value is exactly that of the shortest text that reads back as the same IEEE 754 double
//!   (RFC 7493 §2.2, RFC 8785 §3.2.2.3). `1`, `1.0` and `1e0` are all accepted (one value);
//!   `9007199254740993` (2⁵³ + 1) and `0.10000000000000000001` are refused, since a double
//!   cannot hold them and an arbitrary-precision upstream would read another number than
//!   the one approved; values beyond the double range are refused too;
//! - **lone surrogates** in `\u` escapes (RFC 8785 §3.2.2.2: strings are Unicode text).
//!
//! The output follows RFC 8785 §3.2: no whitespace, members sorted by the UTF-16 code units
//! of their names, strings with the minimal escapes (`\"`, `\\`, `\b`, `\f`, `\n`, `\r`,
//! `\t`, other controls as `\u00xx`), numbers in the ECMAScript form (`1e+21`, `0.000001`,
//! `-0` as `0`).

use std::fmt;

use serde_json::Value;

/// Why text has no canonical form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NotCanonical {
    /// Not JSON.
    #[error("not JSON")]
    Syntax,
    /// An object names a member twice.
    #[error("a member name appears twice in one object")]
    DuplicateName,
    /// A number is not exactly representable as an IEEE 754 double (or is out of its range).
    #[error("a number is not exactly representable as an IEEE 754 double")]
    InexactNumber,
    /// A `\u` escape encodes half of a surrogate pair.
    #[error("a string holds a lone surrogate")]
    LoneSurrogate,
    /// Nested deeper than [`MAX_DEPTH`].
    #[error("nested too deeply")]
    TooDeep,
}

impl NotCanonical {
    /// A stable code for error answers and logs.
    pub fn code(self) -> &'static str {
        match self {
            Self::Syntax => "syntax",
            Self::DuplicateName => "duplicate_name",
            Self::InexactNumber => "inexact_number",
            Self::LoneSurrogate => "lone_surrogate",
            Self::TooDeep => "too_deep",
        }
    }
}

/// Deepest nesting accepted (serde_json's own limit).
pub const MAX_DEPTH: usize = 128;

/// A parsed JSON text that keeps what a canonical form needs: every member in order
/// (duplicates included) and each number's verdict.
#[derive(Clone, PartialEq)]
pub enum ExactJson {
    /// An object, members in text order.
    Object(Vec<(String, ExactJson)>),
    /// An array.
    Array(Vec<ExactJson>),
    /// A string, decoded.
    String(String),
    /// A number: its canonical text, or why it has none.
    Number(Result<String, NotCanonical>),
    /// `true` or `false`.
    Bool(bool),
    /// `null`.
    Null,
}

impl fmt::Debug for ExactJson {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Arguments may hold anything a user typed: show the shape only.
        match self {
            Self::Object(members) => write!(f, "Object({} members)", members.len()),
            Self::Array(items) => write!(f, "Array({} items)", items.len()),
            Self::String(s) => write!(f, "String({} bytes)", s.len()),
            Self::Number(n) => write!(f, "Number({})", n.is_ok()),
            Self::Bool(_) => f.write_str("Bool"),
            Self::Null => f.write_str("Null"),
        }
    }
}

impl ExactJson {
    /// Parses one JSON text (RFC 8259; surrounding whitespace allowed).
    pub fn parse(text: &[u8]) -> Result<Self, NotCanonical> {
        let text = std::str::from_utf8(text).map_err(|_| NotCanonical::Syntax)?;
        let mut parser = Parser {
            bytes: text.as_bytes(),
            at: 0,
        };
        parser.skip_space();
        let value = parser.value(0)?;
        parser.skip_space();
        if parser.at != parser.bytes.len() {
            return Err(NotCanonical::Syntax);
        }
        Ok(value)
    }

    /// The value of member `name` of an object; an error if it is named twice.
    pub fn member(&self, name: &str) -> Result<Option<&ExactJson>, NotCanonical> {
        let Self::Object(members) = self else {
            return Ok(None);
        };
        let mut found = None;
        for (key, value) in members {
            if key == name {
                if found.is_some() {
                    return Err(NotCanonical::DuplicateName);
                }
                found = Some(value);
            }
        }
        Ok(found)
    }

    /// The RFC 8785 form.
    pub fn canonical(&self) -> Result<Vec<u8>, NotCanonical> {
        let mut out = Vec::new();
        self.write(&mut out)?;
        Ok(out)
    }

    fn write(&self, out: &mut Vec<u8>) -> Result<(), NotCanonical> {
        match self {
            Self::Null => out.extend_from_slice(b"null"),
            Self::Bool(true) => out.extend_from_slice(b"true"),
            Self::Bool(false) => out.extend_from_slice(b"false"),
            Self::Number(Ok(text)) => out.extend_from_slice(text.as_bytes()),
            Self::Number(Err(e)) => return Err(*e),
            Self::String(s) => write_string(s, out),
            Self::Array(items) => {
                out.push(b'[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    item.write(out)?;
                }
                out.push(b']');
            }
            Self::Object(members) => {
                let mut sorted: Vec<&(String, ExactJson)> = members.iter().collect();
                sorted.sort_by(|a, b| a.0.encode_utf16().cmp(b.0.encode_utf16()));
                if sorted.windows(2).any(|w| w[0].0 == w[1].0) {
                    return Err(NotCanonical::DuplicateName);
                }
                out.push(b'{');
                for (i, (name, value)) in sorted.into_iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    write_string(name, out);
                    out.push(b':');
                    value.write(out)?;
                }
                out.push(b'}');
            }
        }
        Ok(())
    }

    /// A value built by the gateway itself (a planned policy), as JSON: numbers must be
    /// exact (integers up to 2⁵³, or doubles).
    pub fn from_value(value: &Value) -> Self {
        match value {
            Value::Null => Self::Null,
            Value::Bool(b) => Self::Bool(*b),
            Value::String(s) => Self::String(s.clone()),
            Value::Number(n) => Self::Number(number_of_value(n)),
            Value::Array(items) => Self::Array(items.iter().map(Self::from_value).collect()),
            Value::Object(map) => Self::Object(
                map.iter()
                    .map(|(k, v)| (k.clone(), Self::from_value(v)))
                    .collect(),
            ),
        }
    }
}

fn number_of_value(n: &serde_json::Number) -> Result<String, NotCanonical> {
    // A decoded value has no text left: integers are exact as decoded, doubles are what
    // they are; either way the canonical text must read back as the same number.
    let text = n.to_string();
    canonical_number(&text)
}

/// The canonical form of a JSON text.
pub fn canonicalize(text: &[u8]) -> Result<Vec<u8>, NotCanonical> {
    ExactJson::parse(text)?.canonical()
}

/// RFC 8785 §3.2.2.2.
fn write_string(s: &str, out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    for c in s.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\u{8}' => out.extend_from_slice(b"\\b"),
            '\u{c}' => out.extend_from_slice(b"\\f"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            c if (c as u32) < 0x20 => {
                let b = c as u8;
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(b >> 4)]);
                out.push(HEX[usize::from(b & 15)]);
            }
            c => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    out.push(b'"');
}

/// The canonical text of a JSON number token, if its decimal value is exactly the value of
/// the shortest text of the double it reads as.
pub fn canonical_number(token: &str) -> Result<String, NotCanonical> {
    let value: f64 = token.parse().map_err(|_| NotCanonical::Syntax)?;
    if !value.is_finite() {
        return Err(NotCanonical::InexactNumber);
    }
    let text = es6_number(value);
    if decimal(token)? != decimal(&text)? {
        return Err(NotCanonical::InexactNumber);
    }
    Ok(text)
}

/// A decimal value as (negative, significant digits without leading or trailing zeros,
/// exponent of the last digit); zero is `(false, "", 0)`.
fn decimal(token: &str) -> Result<(bool, String, i64), NotCanonical> {
    let (negative, rest) = match token.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, token),
    };
    let (mantissa, exponent) = match rest.find(['e', 'E']) {
        Some(at) => (&rest[..at], &rest[at + 1..]),
        None => (rest, "0"),
    };
    let exponent: i64 = exponent
        .strip_prefix('+')
        .unwrap_or(exponent)
        .parse()
        .map_err(|_| NotCanonical::InexactNumber)?;
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let mut digits: String = format!("{int}{frac}");
    let mut exponent = exponent
        .checked_sub(i64::try_from(frac.len()).map_err(|_| NotCanonical::InexactNumber)?)
        .ok_or(NotCanonical::InexactNumber)?;
    let trimmed_start = digits.trim_start_matches('0').len();
    digits.drain(..digits.len() - trimmed_start);
    while digits.ends_with('0') {
        digits.pop();
        exponent = exponent.checked_add(1).ok_or(NotCanonical::InexactNumber)?;
    }
    if digits.is_empty() {
        return Ok((false, String::new(), 0));
    }
    Ok((negative, digits, exponent))
}

/// ECMAScript's `Number.prototype.toString` (ECMA-262 Number::toString, radix 10), as
/// RFC 8785 §3.2.2.3 requires: the shortest digits that read back as the same double (Rust's
/// `{:e}`), and of two as short and as close, the even one.
pub fn es6_number(value: f64) -> String {
    if value == 0.0 {
        return "0".to_owned();
    }
    let (digits, exponent) = shortest_digits(value.abs());
    let k = i64::try_from(digits.len()).unwrap_or(i64::MAX);
    let n = exponent + 1;
    let mut out = String::with_capacity(digits.len() + 8);
    if value < 0.0 {
        out.push('-');
    }
    let zeros = |count: i64| "0".repeat(usize::try_from(count).unwrap_or(0));
    if k <= n && n <= 21 {
        out.push_str(&digits);
        out.push_str(&zeros(n - k));
    } else if 0 < n && n <= 21 {
        let split = usize::try_from(n).unwrap_or(0);
        out.push_str(&digits[..split]);
        out.push('.');
        out.push_str(&digits[split..]);
    } else if -6 < n && n <= 0 {
        out.push_str("0.");
        out.push_str(&zeros(-n));
        out.push_str(&digits);
    } else {
        out.push_str(&digits[..1]);
        if k > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        out.push('e');
        out.push(if n - 1 < 0 { '-' } else { '+' });
        out.push_str(&(n - 1).abs().to_string());
    }
    out
}

/// `{:e}` text as (significant digits without trailing zeros, exponent of the first digit).
fn scientific(text: &str) -> (String, i64) {
    let (mantissa, exponent) = text.split_once('e').unwrap_or((text, "0"));
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let digits = digits.trim_end_matches('0');
    let digits = if digits.is_empty() { "0" } else { digits };
    (digits.to_owned(), exponent.parse().unwrap_or(0))
}

/// The shortest round-trip digits of a positive double, ties to even.
fn shortest_digits(value: f64) -> (String, i64) {
    let (digits, exponent) = scientific(&format!("{value:e}"));
    // A tie: the double is exactly halfway between two candidates of that many digits, so
    // its exact expansion (at most 767 significant digits) is one digit longer and ends in 5.
    // Two candidates of k digits both read back only when k exceeds a double's ~15.95
    // digits; and the expansion rounded to k + 1 digits then ends in 5 (cheap filters before
    // the exact expansion).
    if digits.len() < 16 {
        return (digits, exponent);
    }
    let rounded = format!("{value:.prec$e}", prec = digits.len());
    if scientific(&rounded).0.len() != digits.len() + 1 || !scientific(&rounded).0.ends_with('5') {
        return (digits, exponent);
    }
    let (exact, exact_exponent) = scientific(&format!("{value:.1100e}"));
    if exact.len() != digits.len() + 1 || !exact.ends_with('5') || exact_exponent != exponent {
        return (digits, exponent);
    }
    let below = &exact[..digits.len()];
    let last = below.bytes().last().unwrap_or(b'0');
    if last % 2 == 0 {
        let candidate = below.trim_end_matches('0');
        let candidate = if candidate.is_empty() { "0" } else { candidate };
        if round_trips(candidate, exponent, value) {
            return (candidate.to_owned(), exponent);
        }
        return (digits, exponent);
    }
    // The even one is above: `below` + 1 in its last place. After a 9 it would carry into a
    // shorter text, which would have been the shortest already: not a tie of this length.
    if last == b'9' {
        return (digits, exponent);
    }
    let mut above = below.as_bytes().to_vec();
    if let Some(d) = above.last_mut() {
        *d += 1;
    }
    let above = String::from_utf8(above).unwrap_or_default();
    let above = above.trim_end_matches('0');
    if round_trips(above, exponent, value) {
        return (above.to_owned(), exponent);
    }
    (digits, exponent)
}

fn round_trips(digits: &str, exponent: i64, value: f64) -> bool {
    let text = format!("{}.{}e{exponent}", &digits[..1], &digits[1..]);
    text.parse::<f64>() == Ok(value)
}

struct Parser<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn skip_space(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    fn expect(&mut self, literal: &[u8]) -> Result<(), NotCanonical> {
        if self.bytes[self.at..].starts_with(literal) {
            self.at += literal.len();
            Ok(())
        } else {
            Err(NotCanonical::Syntax)
        }
    }

    fn value(&mut self, depth: usize) -> Result<ExactJson, NotCanonical> {
        if depth >= MAX_DEPTH {
            return Err(NotCanonical::TooDeep);
        }
        match self.peek().ok_or(NotCanonical::Syntax)? {
            b'{' => self.object(depth),
            b'[' => self.array(depth),
            b'"' => self.string().map(ExactJson::String),
            b't' => self.expect(b"true").map(|()| ExactJson::Bool(true)),
            b'f' => self.expect(b"false").map(|()| ExactJson::Bool(false)),
            b'n' => self.expect(b"null").map(|()| ExactJson::Null),
            b'-' | b'0'..=b'9' => self.number(),
            _ => Err(NotCanonical::Syntax),
        }
    }

    fn object(&mut self, depth: usize) -> Result<ExactJson, NotCanonical> {
        self.at += 1;
        let mut members = Vec::new();
        self.skip_space();
        if self.peek() == Some(b'}') {
            self.at += 1;
            return Ok(ExactJson::Object(members));
        }
        loop {
            self.skip_space();
            if self.peek() != Some(b'"') {
                return Err(NotCanonical::Syntax);
            }
            let name = self.string()?;
            self.skip_space();
            self.expect(b":")?;
            self.skip_space();
            let value = self.value(depth + 1)?;
            members.push((name, value));
            self.skip_space();
            match self.peek() {
                Some(b',') => self.at += 1,
                Some(b'}') => {
                    self.at += 1;
                    return Ok(ExactJson::Object(members));
                }
                _ => return Err(NotCanonical::Syntax),
            }
        }
    }

    fn array(&mut self, depth: usize) -> Result<ExactJson, NotCanonical> {
        self.at += 1;
        let mut items = Vec::new();
        self.skip_space();
        if self.peek() == Some(b']') {
            self.at += 1;
            return Ok(ExactJson::Array(items));
        }
        loop {
            self.skip_space();
            items.push(self.value(depth + 1)?);
            self.skip_space();
            match self.peek() {
                Some(b',') => self.at += 1,
                Some(b']') => {
                    self.at += 1;
                    return Ok(ExactJson::Array(items));
                }
                _ => return Err(NotCanonical::Syntax),
            }
        }
    }

    fn hex4(&mut self) -> Result<u32, NotCanonical> {
        let digits = self
            .bytes
            .get(self.at..self.at + 4)
            .ok_or(NotCanonical::Syntax)?;
        let mut value = 0;
        for d in digits {
            value = value * 16 + char::from(*d).to_digit(16).ok_or(NotCanonical::Syntax)?;
        }
        self.at += 4;
        Ok(value)
    }

    fn string(&mut self) -> Result<String, NotCanonical> {
        self.at += 1;
        let mut out = String::new();
        loop {
            let start = self.at;
            while let Some(b) = self.peek() {
                if b == b'"' || b == b'\\' || b < 0x20 {
                    break;
                }
                self.at += 1;
            }
            // The input is a `str` and the stop bytes are ASCII: the run is whole characters.
            out.push_str(
                std::str::from_utf8(&self.bytes[start..self.at])
                    .map_err(|_| NotCanonical::Syntax)?,
            );
            match self.peek().ok_or(NotCanonical::Syntax)? {
                b'"' => {
                    self.at += 1;
                    return Ok(out);
                }
                b'\\' => {
                    self.at += 1;
                    let escape = self.peek().ok_or(NotCanonical::Syntax)?;
                    self.at += 1;
                    let c = match escape {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => self.unicode_escape()?,
                        _ => return Err(NotCanonical::Syntax),
                    };
                    out.push(c);
                }
                // A raw control character.
                _ => return Err(NotCanonical::Syntax),
            }
        }
    }

    fn unicode_escape(&mut self) -> Result<char, NotCanonical> {
        let first = self.hex4()?;
        let code = match first {
            0xD800..=0xDBFF => {
                if !self.bytes[self.at..].starts_with(b"\\u") {
                    return Err(NotCanonical::LoneSurrogate);
                }
                self.at += 2;
                let second = self.hex4()?;
                if !(0xDC00..=0xDFFF).contains(&second) {
                    return Err(NotCanonical::LoneSurrogate);
                }
                0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00)
            }
            0xDC00..=0xDFFF => return Err(NotCanonical::LoneSurrogate),
            code => code,
        };
        char::from_u32(code).ok_or(NotCanonical::LoneSurrogate)
    }

    fn number(&mut self) -> Result<ExactJson, NotCanonical> {
        let start = self.at;
        if self.peek() == Some(b'-') {
            self.at += 1;
        }
        let digits = |p: &mut Self| {
            let from = p.at;
            while matches!(p.peek(), Some(b'0'..=b'9')) {
                p.at += 1;
            }
            p.at - from
        };
        match self.peek() {
            Some(b'0') => self.at += 1,
            Some(b'1'..=b'9') => {
                digits(self);
            }
            _ => return Err(NotCanonical::Syntax),
        }
        if self.peek() == Some(b'.') {
            self.at += 1;
            if digits(self) == 0 {
                return Err(NotCanonical::Syntax);
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.at += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.at += 1;
            }
            if digits(self) == 0 {
                return Err(NotCanonical::Syntax);
            }
        }
        let token =
            std::str::from_utf8(&self.bytes[start..self.at]).map_err(|_| NotCanonical::Syntax)?;
        Ok(ExactJson::Number(canonical_number(token)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(text: &str) -> Result<String, NotCanonical> {
        canonicalize(text.as_bytes()).map(|b| String::from_utf8(b).unwrap())
    }

    #[test]
    fn rfc8785_appendix_b_numbers() {
        // RFC 8785 Appendix B: IEEE 754 bit patterns and their canonical text.
        for (bits, text) in [
            (0x0000_0000_0000_0000_u64, "0"),
            (0x8000_0000_0000_0000, "0"),
            (0x0000_0000_0000_0001, "5e-324"),
            (0x8000_0000_0000_0001, "-5e-324"),
            (0x7fef_ffff_ffff_ffff, "1.7976931348623157e+308"),
            (0xffef_ffff_ffff_ffff, "-1.7976931348623157e+308"),
            (0x4340_0000_0000_0000, "9007199254740992"),
            (0xc340_0000_0000_0000, "-9007199254740992"),
            (0x4430_0000_0000_0000, "295147905179352830000"),
            (0x44b5_2d02_c7e1_4af5, "9.999999999999997e+22"),
            (0x44b5_2d02_c7e1_4af6, "1e+23"),
            (0x44b5_2d02_c7e1_4af7, "1.0000000000000001e+23"),
            (0x444b_1ae4_d6e2_ef4e, "999999999999999700000"),
            (0x444b_1ae4_d6e2_ef4f, "999999999999999900000"),
            (0x444b_1ae4_d6e2_ef50, "1e+21"),
            (0x3eb0_c6f7_a0b5_ed8c, "9.999999999999997e-7"),
            (0x3eb0_c6f7_a0b5_ed8d, "0.000001"),
            (0x41b3_de43_5555_5553, "333333333.3333332"),
            (0x41b3_de43_5555_5554, "333333333.33333325"),
            (0x41b3_de43_5555_5555, "333333333.3333333"),
            (0x41b3_de43_5555_5556, "333333333.3333334"),
            (0x41b3_de43_5555_5557, "333333333.33333343"),
            (0xbecb_f647_612f_3696, "-0.0000033333333333333333"),
            (0x4314_3ff3_c1cb_0959, "1424953923781206.2"),
        ] {
            let value = f64::from_bits(bits);
            assert_eq!(es6_number(value), text, "{bits:#x}");
            // Its own canonical text is accepted as exact and reproduces itself.
            assert_eq!(canonical_number(text).as_deref(), Ok(text), "{bits:#x}");
        }
    }

    #[test]
    fn every_double_round_trips_through_its_canonical_text() {
        // 50 000 bit patterns from a fixed generator, every finite one.
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut checked = 0;
        while checked < 50_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let value = f64::from_bits(state);
            if !value.is_finite() {
                continue;
            }
            let text = es6_number(value);
            assert_eq!(text.parse::<f64>(), Ok(value), "{text}");
            assert_eq!(canonical_number(&text).as_deref(), Ok(text.as_str()));
            checked += 1;
        }
    }

    #[test]
    fn rfc8785_sorting_and_strings() {
        // RFC 8785 §3.2.3: names sorted by UTF-16 code units (the emoji's high surrogate
        // sorts before U+FB33, unlike its code point).
        let input = r#"{
          "\u20ac": "Euro Sign",
          "\r": "Carriage Return",
          "\ufb33": "Hebrew Letter Dalet With Dagesh",
          "1": "One",
          "\ud83d\ude00": "Emoji: Grinning Face",
          "\u0080": "Control",
          "\u00f6": "Latin Small Letter O With Diaeresis"
        }"#;
        assert_eq!(
            canon(input).unwrap(),
            "{\"\\r\":\"Carriage Return\",\"1\":\"One\",\"\u{80}\":\"Control\",\
             \"\u{f6}\":\"Latin Small Letter O With Diaeresis\",\"\u{20ac}\":\"Euro Sign\",\
             \"\u{1f600}\":\"Emoji: Grinning Face\",\"\u{fb33}\":\"Hebrew Letter Dalet With Dagesh\"}"
        );
        // RFC 8785 §3.2.2: the example of the section.
        let input = r#"{"numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
            "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
            "literals": [null, true, false]}"#;
        // 333333333.33333329 is not that double's shortest text: refused as inexact.
        assert_eq!(canon(input), Err(NotCanonical::InexactNumber));
        let input = input.replace("333333333.33333329", "333333333.3333333");
        assert_eq!(
            canon(&input).unwrap(),
            "{\"literals\":[null,true,false],\"numbers\":[333333333.3333333,1e+30,4.5,0.002,1e-27],\
             \"string\":\"\u{20ac}$\\u000f\\nA'B\\\"\\\\\\\\\\\"/\"}"
        );
    }

    #[test]
    fn equal_values_have_one_form_and_different_ones_never_share_it() {
        assert_eq!(
            canon(r#"{"b": [1.0, 1e0, 10E-1, -0], "a": "x"}"#).unwrap(),
            r#"{"a":"x","b":[1,1,1,0]}"#
        );
        assert_eq!(canon(r#""\u00e9""#).unwrap(), canon("\"é\"").unwrap());
        for refused in [
            "9007199254740993",
            "18446744073709551616",
            "0.10000000000000000001",
            "1e400",
            "1e-400",
            "123456789012345678901234567890",
        ] {
            assert_eq!(
                canon(refused),
                Err(NotCanonical::InexactNumber),
                "{refused}"
            );
        }
        for exact in ["9007199254740992", "0.1", "1e21", "100", "-1.5e-7"] {
            assert!(canon(exact).is_ok(), "{exact}");
        }
    }

    #[test]
    fn what_parsers_read_differently_is_refused() {
        assert_eq!(
            canon(r#"{"id": 1, "id": 2}"#),
            Err(NotCanonical::DuplicateName)
        );
        assert_eq!(
            canon(r#"{"a": {"id": 1, "\u0069d": 2}}"#),
            Err(NotCanonical::DuplicateName)
        );
        assert_eq!(canon(r#""\ud800""#), Err(NotCanonical::LoneSurrogate));
        assert_eq!(canon(r#""\udc00x""#), Err(NotCanonical::LoneSurrogate));
        assert_eq!(canon(r#""\ud800\u0041""#), Err(NotCanonical::LoneSurrogate));
        for bad in [
            "",
            "{",
            "[1,]",
            "01",
            "1.",
            "-",
            "\"\u{1}\"",
            "tru",
            "{} x",
            "+1",
        ] {
            assert_eq!(canon(bad), Err(NotCanonical::Syntax), "{bad:?}");
        }
        let deep = "[".repeat(MAX_DEPTH + 1) + &"]".repeat(MAX_DEPTH + 1);
        assert_eq!(canon(&deep), Err(NotCanonical::TooDeep));
    }

    #[test]
    fn a_member_named_twice_cannot_be_looked_up() {
        let message =
            ExactJson::parse(br#"{"params": {"arguments": {}, "arguments": {"x": 1}}}"#).unwrap();
        let params = message.member("params").unwrap().unwrap();
        assert_eq!(params.member("arguments"), Err(NotCanonical::DuplicateName));
        assert_eq!(message.member("other"), Ok(None));
    }
}
