//! Reference JSON parsers and a generator of hostile JSON-RPC bodies, for differential tests
//! of a strict message reader (idjag-core's `jsonrpc` and the gateway in front of it).
//!
//! Four small reference parsers share one tokenizer and differ where real JSON parsers
//! differ: which of two same-named members counts, whether names match case-insensitively
//! (Go's `encoding/json` v1 binding a struct field), and whether a NUL ends a string (C
//! parsers). [`body`] generates JSON-RPC messages with repeated and fold-colliding member
//! names at every level; a strict reader must refuse each body or return what every
//! [`Policy`] reads ([`Decided`]).
//!
//! ```
//! use idjag_core::jsonrpc::MessageError;
//! use idjag_test_support::json_reference::{POLICIES, strict};
//!
//! let body = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","Name":"b"}}"#;
//! assert_eq!(strict(body).err(), Some(MessageError::CollidingMembers));
//! let readings: Vec<_> = POLICIES.iter().map(|p| p.read(body)).collect();
//! assert!(readings.iter().any(|r| r != &readings[0]));
//! ```

use idjag_core::jsonrpc::{MessageError, read_message};
use proptest::prelude::*;
use serde_json::{Map, Value};

// The reference parsers.
// ---------------------------------------------------------------------------------------------

/// A JSON value with every member kept, in order, duplicates included.
#[derive(Debug, Clone, PartialEq)]
enum Raw {
    Null,
    Bool(bool),
    Number(String),
    String(String),
    Array(Vec<Raw>),
    Object(Vec<(String, Raw)>),
}

/// A recursive-descent tokenizer for the JSON of RFC 8259 (no depth limit: test input only).
struct Tokens<'a> {
    text: &'a [u8],
    at: usize,
}

impl Tokens<'_> {
    fn parse(text: &str) -> Option<Raw> {
        let mut t = Tokens {
            text: text.as_bytes(),
            at: 0,
        };
        let value = t.value()?;
        t.space();
        (t.at == t.text.len()).then_some(value)
    }

    fn space(&mut self) {
        while self
            .text
            .get(self.at)
            .is_some_and(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
        {
            self.at += 1;
        }
    }

    fn eat(&mut self, b: u8) -> bool {
        self.space();
        if self.text.get(self.at) == Some(&b) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn literal(&mut self, word: &str, value: Raw) -> Option<Raw> {
        self.text[self.at..].starts_with(word.as_bytes()).then(|| {
            self.at += word.len();
            value
        })
    }

    fn value(&mut self) -> Option<Raw> {
        self.space();
        match *self.text.get(self.at)? {
            b'{' => {
                self.at += 1;
                let mut members = Vec::new();
                if self.eat(b'}') {
                    return Some(Raw::Object(members));
                }
                loop {
                    self.space();
                    let name = self.string()?;
                    if !self.eat(b':') {
                        return None;
                    }
                    members.push((name, self.value()?));
                    if self.eat(b'}') {
                        return Some(Raw::Object(members));
                    }
                    if !self.eat(b',') {
                        return None;
                    }
                }
            }
            b'[' => {
                self.at += 1;
                let mut items = Vec::new();
                if self.eat(b']') {
                    return Some(Raw::Array(items));
                }
                loop {
                    items.push(self.value()?);
                    if self.eat(b']') {
                        return Some(Raw::Array(items));
                    }
                    if !self.eat(b',') {
                        return None;
                    }
                }
            }
            b'"' => self.string().map(Raw::String),
            b't' => self.literal("true", Raw::Bool(true)),
            b'f' => self.literal("false", Raw::Bool(false)),
            b'n' => self.literal("null", Raw::Null),
            _ => {
                let start = self.at;
                while self
                    .text
                    .get(self.at)
                    .is_some_and(|b| b"+-.eE0123456789".contains(b))
                {
                    self.at += 1;
                }
                let number = std::str::from_utf8(&self.text[start..self.at]).ok()?;
                number
                    .parse::<f64>()
                    .ok()
                    .map(|_| Raw::Number(number.to_owned()))
            }
        }
    }

    fn hex4(&mut self) -> Option<u32> {
        let digits = std::str::from_utf8(self.text.get(self.at..self.at + 4)?).ok()?;
        self.at += 4;
        u32::from_str_radix(digits, 16).ok()
    }

    fn string(&mut self) -> Option<String> {
        if self.text.get(self.at) != Some(&b'"') {
            return None;
        }
        self.at += 1;
        let mut out = Vec::new();
        loop {
            match *self.text.get(self.at)? {
                b'"' => {
                    self.at += 1;
                    return String::from_utf8(out).ok();
                }
                b'\\' => {
                    self.at += 1;
                    let escaped = *self.text.get(self.at)?;
                    self.at += 1;
                    let c = match escaped {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => {
                            let high = self.hex4()?;
                            let code = if (0xd800..0xdc00).contains(&high) {
                                if !self.text[self.at..].starts_with(b"\\u") {
                                    return None;
                                }
                                self.at += 2;
                                let low = self.hex4()?;
                                0x10000 + ((high - 0xd800) << 10) + (low.checked_sub(0xdc00)?)
                            } else {
                                high
                            };
                            char::from_u32(code)?
                        }
                        _ => return None,
                    };
                    out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
                }
                b if b < 0x20 => return None,
                b => {
                    out.push(b);
                    self.at += 1;
                }
            }
        }
    }
}

/// How a reference parser resolves member names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// The first member of a name counts (some streaming parsers, cJSON's lookup).
    FirstWins,
    /// The last member of a name counts (serde_json, Go maps, JavaScript).
    LastWins,
    /// Go's `encoding/json` v1 decoding into structs: the envelope's fields match names
    /// case-insensitively under simple folding, the last match counts; free-form maps are
    /// exact, last wins.
    CaseInsensitive,
    /// A C parser: names and the method and tool strings end at NUL; the first member counts.
    NulTruncating,
}

/// Every reference parser.
pub const POLICIES: [Policy; 4] = [
    Policy::FirstWins,
    Policy::LastWins,
    Policy::CaseInsensitive,
    Policy::NulTruncating,
];

/// Whether two characters are one under simple case folding, as Go's `strings.EqualFold`
/// decides it (its orbits: `k`, `K` and the Kelvin sign; `s`, `S` and the long s; ...).
fn same_fold(a: char, b: char) -> bool {
    let single = |mut it: std::char::ToUppercase| match (it.next(), it.next()) {
        (Some(c), None) => c,
        _ => '\u{0}',
    };
    let lower = |c: char| {
        let mut it = c.to_lowercase();
        match (it.next(), it.next()) {
            (Some(l), None) => l,
            _ => c,
        }
    };
    a == b
        || lower(a) == lower(b)
        || (single(a.to_uppercase()) == single(b.to_uppercase())
            && single(a.to_uppercase()) != '\u{0}')
}

fn equal_fold(a: &str, b: &str) -> bool {
    a.chars().count() == b.chars().count() && a.chars().zip(b.chars()).all(|(x, y)| same_fold(x, y))
}

fn truncate_at_nul(s: &str) -> &str {
    s.split('\0').next().unwrap_or_default()
}

impl Policy {
    /// The member `field` of an envelope object, as this parser reads it.
    fn field<'a>(self, members: &'a [(String, Raw)], field: &str) -> Option<&'a Raw> {
        let mut matching = members.iter().filter(|(name, _)| match self {
            Policy::FirstWins | Policy::LastWins => name == field,
            Policy::CaseInsensitive => equal_fold(name, field),
            Policy::NulTruncating => truncate_at_nul(name) == field,
        });
        match self {
            Policy::FirstWins | Policy::NulTruncating => matching.next(),
            Policy::LastWins | Policy::CaseInsensitive => matching.next_back(),
        }
        .map(|(_, value)| value)
    }

    /// A free-form value (tool arguments) as this parser builds it.
    fn free(self, raw: &Raw) -> Value {
        match raw {
            Raw::Null => Value::Null,
            Raw::Bool(b) => Value::Bool(*b),
            Raw::Number(n) => serde_json::from_str(n).unwrap(),
            Raw::String(s) => Value::String(s.clone()),
            Raw::Array(items) => Value::Array(items.iter().map(|i| self.free(i)).collect()),
            Raw::Object(members) => {
                let mut map = Map::new();
                for (name, value) in members {
                    let name = match self {
                        Policy::NulTruncating => truncate_at_nul(name),
                        _ => name,
                    };
                    let first = matches!(self, Policy::FirstWins | Policy::NulTruncating);
                    if first && map.contains_key(name) {
                        continue;
                    }
                    map.insert(name.to_owned(), self.free(value));
                }
                Value::Object(map)
            }
        }
    }

    fn text(self, raw: Option<&Raw>) -> Option<String> {
        match raw? {
            Raw::String(s) if self == Policy::NulTruncating => Some(truncate_at_nul(s).to_owned()),
            Raw::String(s) => Some(s.clone()),
            _ => None,
        }
    }

    /// What this parser decides on: the method, and for `tools/call` the tool and arguments.
    pub fn read(self, body: &str) -> Option<Decided> {
        let Raw::Object(top) = Tokens::parse(body)? else {
            return None;
        };
        let method = self.text(self.field(&top, "method"));
        let (mut tool, mut arguments) = (None, None);
        if method.as_deref() == Some("tools/call")
            && let Some(Raw::Object(params)) = self.field(&top, "params")
        {
            tool = self.text(self.field(params, "name"));
            arguments = self.field(params, "arguments").map(|a| self.free(a));
        }
        Some(Decided {
            method,
            tool,
            arguments,
        })
    }
}

/// What a parser decided a message is.
#[derive(Debug, Clone, PartialEq)]
pub struct Decided {
    /// The method.
    pub method: Option<String>,
    /// `params.name` of a `tools/call`.
    pub tool: Option<String>,
    /// `params.arguments` of a `tools/call`, every member kept as the parser resolved it.
    pub arguments: Option<Value>,
}

/// What the strict reader decided, in the same terms.
pub fn strict(body: &str) -> Result<Decided, MessageError> {
    read_message(body.as_bytes()).map(|m| Decided {
        method: m.method().map(str::to_owned),
        tool: m.tool().map(str::to_owned),
        arguments: m.arguments().map(|a| Value::Object(a.clone())),
    })
}

// ---------------------------------------------------------------------------------------------
// Generated bodies.
// ---------------------------------------------------------------------------------------------

/// How a generated member name is disguised.
#[derive(Debug, Clone)]
enum Twist {
    Same,
    Upper,
    Capital,
    Kelvin,
    LongS,
    NulAt(usize),
    ControlAt(usize, char),
    NulEnd,
}

fn twist() -> impl Strategy<Value = Twist> {
    prop_oneof![
        3 => Just(Twist::Same),
        1 => Just(Twist::Upper),
        1 => Just(Twist::Capital),
        1 => Just(Twist::Kelvin),
        1 => Just(Twist::LongS),
        1 => (0..10usize).prop_map(Twist::NulAt),
        1 => (0..10usize, prop::sample::select(vec!['\u{7}', '\u{1f}', '\u{7f}', '\u{85}']))
            .prop_map(|(at, c)| Twist::ControlAt(at, c)),
        1 => Just(Twist::NulEnd),
    ]
}

impl Twist {
    fn apply(&self, word: &str) -> String {
        let insert = |at: usize, c: char| {
            let mut s = word.to_owned();
            s.insert(at.min(word.len()), c);
            s
        };
        match self {
            Twist::Same => word.to_owned(),
            Twist::Upper => word.to_ascii_uppercase(),
            Twist::Capital => {
                let mut s = word.to_owned();
                if let Some(first) = s.get_mut(0..1) {
                    first.make_ascii_uppercase();
                }
                s
            }
            Twist::Kelvin => word.replace(['k', 'K'], "\u{212a}"),
            Twist::LongS => word.replace('s', "\u{17f}"),
            Twist::NulAt(at) => insert(*at, '\0'),
            Twist::ControlAt(at, c) => insert(*at, *c),
            Twist::NulEnd => insert(word.len(), '\0'),
        }
    }
}

const METHODS: [&str; 4] = ["tools/call", "tools/list", "ping", "tools/call\u{0}x"];
const TOOLS: [&str; 4] = [
    "read_file",
    "delete_repo",
    "read_file\u{0}delete_repo",
    "Read_File",
];
const WORDS: [&str; 12] = [
    "jsonrpc",
    "id",
    "method",
    "params",
    "name",
    "arguments",
    "_meta",
    "path",
    "kind",
    "mask",
    "Path",
    "nested",
];

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-1000i64..1000).prop_map(Value::from),
        prop::sample::select(vec!["/tmp", "/etc/passwd", "a\u{0}b", "", "K\u{212a}"])
            .prop_map(Value::from),
    ]
}

/// A value for a member named `word`: what an attacker would put there.
fn value_for(word: &str) -> BoxedStrategy<Tree> {
    match word {
        "method" => prop::sample::select(METHODS.to_vec())
            .prop_map(|m| Tree::Leaf(m.into()))
            .boxed(),
        "name" => prop::sample::select(TOOLS.to_vec())
            .prop_map(|t| Tree::Leaf(t.into()))
            .boxed(),
        _ => tree().boxed(),
    }
}

/// A generated JSON value whose objects may repeat names.
#[derive(Debug, Clone)]
enum Tree {
    Leaf(Value),
    Array(Vec<Tree>),
    Object(Vec<(String, Tree)>),
}

fn tree() -> impl Strategy<Value = Tree> {
    leaf()
        .prop_map(Tree::Leaf)
        .prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Tree::Array),
                prop::collection::vec((prop::sample::select(WORDS.to_vec()), twist(), inner), 0..4)
                    .prop_map(|members| {
                        Tree::Object(
                            members
                                .into_iter()
                                .map(|(word, twist, value)| (twist.apply(word), value))
                                .collect(),
                        )
                    }),
            ]
        })
}

impl Tree {
    fn write(&self, out: &mut String) {
        match self {
            Tree::Leaf(value) => out.push_str(&value.to_string()),
            Tree::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    item.write(out);
                }
                out.push(']');
            }
            Tree::Object(members) => {
                out.push('{');
                for (i, (name, value)) in members.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&Value::from(name.as_str()).to_string());
                    out.push(':');
                    value.write(out);
                }
                out.push('}');
            }
        }
    }

    fn members(&mut self) -> &mut Vec<(String, Tree)> {
        match self {
            Tree::Object(members) => members,
            _ => unreachable!("the envelope is made of objects"),
        }
    }

    /// The object under `name` (the first such member), if it is one.
    fn child(&mut self, name: &str) -> Option<&mut Tree> {
        self.members()
            .iter_mut()
            .find(|(n, v)| n == name && matches!(v, Tree::Object(_)))
            .map(|(_, v)| v)
    }
}

/// An extra member: where it goes (0 the message, 1 `params`, 2 `arguments`, 3 an object
/// inside the arguments), its name and value, and its position among its siblings.
#[derive(Debug, Clone)]
struct Extra {
    level: u8,
    name: String,
    value: Tree,
    position: usize,
}

fn extra() -> impl Strategy<Value = Extra> {
    (
        0..4u8,
        prop::sample::select(WORDS.to_vec()),
        twist(),
        0..8usize,
    )
        .prop_flat_map(|(level, word, twist, position)| {
            value_for(word).prop_map(move |value| Extra {
                level,
                name: twist.apply(word),
                value,
                position,
            })
        })
}

/// JSON-RPC bodies (`tools/call`, `tools/list`, ...) with generated extra members, repeated and
/// fold-colliding names among them, at every level.
pub fn body() -> impl Strategy<Value = String> {
    (
        prop::sample::select(METHODS[..3].to_vec()),
        prop::sample::select(TOOLS[..2].to_vec()),
        prop::collection::vec(extra(), 0..4),
    )
        .prop_map(|(method, tool, extras)| {
            let mut message = Tree::Object(vec![
                ("jsonrpc".into(), Tree::Leaf("2.0".into())),
                ("id".into(), Tree::Leaf(7.into())),
                ("method".into(), Tree::Leaf(method.into())),
                (
                    "params".into(),
                    Tree::Object(vec![
                        ("name".into(), Tree::Leaf(tool.into())),
                        (
                            "arguments".into(),
                            Tree::Object(vec![
                                ("path".into(), Tree::Leaf("/tmp".into())),
                                (
                                    "nested".into(),
                                    Tree::Object(vec![("kind".into(), Tree::Leaf("a".into()))]),
                                ),
                            ]),
                        ),
                    ]),
                ),
            ]);
            for extra in extras {
                let target = match extra.level {
                    0 => Some(&mut message),
                    1 => message.child("params"),
                    2 => message.child("params").and_then(|p| p.child("arguments")),
                    _ => message
                        .child("params")
                        .and_then(|p| p.child("arguments"))
                        .and_then(|a| a.child("nested")),
                };
                if let Some(target) = target {
                    let members = target.members();
                    let at = extra.position.min(members.len());
                    members.insert(at, (extra.name, extra.value));
                }
            }
            let mut out = String::new();
            message.write(&mut out);
            out
        })
}
