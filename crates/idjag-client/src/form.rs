//! The `application/x-www-form-urlencoded` body of a token request, in a fixed field order.

use zeroize::Zeroizing;

/// Form fields in the order they were pushed. Values are wiped from memory on drop, since
/// some are secrets.
#[derive(Default, Clone)]
pub(crate) struct Form {
    pairs: Vec<(&'static str, Zeroizing<String>)>,
}

impl Form {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    pub(crate) fn push(&mut self, name: &'static str, value: &str) {
        self.pairs.push((name, Zeroizing::new(value.to_owned())));
    }

    /// The encoded body (space as `+`, everything outside `*-._` and alphanumerics
    /// percent-encoded).
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut serializer = url::form_urlencoded::Serializer::new(String::new());
        for (name, value) in &self.pairs {
            serializer.append_pair(name, value);
        }
        serializer.finish().into_bytes()
    }
}
