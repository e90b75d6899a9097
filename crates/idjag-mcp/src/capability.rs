//! The extension identifier and its capability declaration (requirement EMA-01).
//!
//! MCP extensions are opt-in: a client or server declares one under `capabilities.extensions`,
//! keyed by its identifier, with a settings object. Enterprise-Managed Authorization defines no
//! settings, so the object is `{}`.
//!
//! ```
//! use idjag_mcp::capability::{EXTENSION_ID, EnterpriseManagedAuthorization};
//! use rmcp::model::{ClientCapabilities, ServerCapabilities};
//!
//! let client = ClientCapabilities::default().enable_enterprise_managed_authorization();
//! assert_eq!(
//!     serde_json::to_value(&client).unwrap(),
//!     serde_json::json!({ "extensions": { EXTENSION_ID: {} } })
//! );
//!
//! let server: ServerCapabilities = serde_json::from_value(serde_json::json!({
//!     "tools": {},
//!     "extensions": { "io.modelcontextprotocol/enterprise-managed-authorization": {} }
//! })).unwrap();
//! assert!(server.supports_enterprise_managed_authorization());
//! ```
//!
//! The declaration is informational. Authorization happens over HTTP before the first MCP
//! message, so a client learns whether the flow applies from the resource authorization
//! server's metadata (the ID-JAG grant profile, decision D-12), never from these
//! capabilities.

use rmcp::model::{ClientCapabilities, ExtensionCapabilities, JsonObject, ServerCapabilities};

/// The extension identifier: `io.modelcontextprotocol/enterprise-managed-authorization`.
pub const EXTENSION_ID: &str = idjag_core::wire::MCP_EXTENSION_ENTERPRISE_MANAGED_AUTHORIZATION;

/// Declares and reads the extension in rmcp's client and server capabilities.
///
/// Declaring keeps every other extension already present. Reading accepts any settings
/// object, since the extension defines none and later revisions may add some.
pub trait EnterpriseManagedAuthorization {
    /// Declares the extension (settings `{}`), in place.
    fn set_enterprise_managed_authorization(&mut self);

    /// Declares the extension (settings `{}`).
    #[must_use]
    fn enable_enterprise_managed_authorization(mut self) -> Self
    where
        Self: Sized,
    {
        self.set_enterprise_managed_authorization();
        self
    }

    /// Whether the extension is declared.
    fn supports_enterprise_managed_authorization(&self) -> bool;
}

fn declare(extensions: &mut Option<ExtensionCapabilities>) {
    extensions
        .get_or_insert_with(ExtensionCapabilities::new)
        .insert(EXTENSION_ID.to_owned(), JsonObject::new());
}

fn declared(extensions: Option<&ExtensionCapabilities>) -> bool {
    extensions.is_some_and(|e| e.contains_key(EXTENSION_ID))
}

impl EnterpriseManagedAuthorization for ClientCapabilities {
    fn set_enterprise_managed_authorization(&mut self) {
        declare(&mut self.extensions);
    }

    fn supports_enterprise_managed_authorization(&self) -> bool {
        declared(self.extensions.as_ref())
    }
}

impl EnterpriseManagedAuthorization for ServerCapabilities {
    fn set_enterprise_managed_authorization(&mut self) {
        declare(&mut self.extensions);
    }

    fn supports_enterprise_managed_authorization(&self) -> bool {
        declared(self.extensions.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn ema_01_client_declaration_is_the_identifier_with_empty_settings() {
        let caps = ClientCapabilities::default().enable_enterprise_managed_authorization();
        assert_eq!(
            serde_json::to_value(&caps).unwrap(),
            json!({ "extensions": { "io.modelcontextprotocol/enterprise-managed-authorization": {} } })
        );
        assert!(caps.supports_enterprise_managed_authorization());
    }

    #[test]
    fn ema_01_server_declaration_keeps_other_capabilities_and_extensions() {
        let mut caps: ServerCapabilities = serde_json::from_value(json!({
            "tools": { "listChanged": true },
            "extensions": { "io.modelcontextprotocol/ui": { "mimeTypes": ["text/html"] } }
        }))
        .unwrap();
        assert!(!caps.supports_enterprise_managed_authorization());
        caps.set_enterprise_managed_authorization();
        caps.set_enterprise_managed_authorization();
        assert_eq!(
            serde_json::to_value(&caps).unwrap(),
            json!({
                "tools": { "listChanged": true },
                "extensions": {
                    "io.modelcontextprotocol/ui": { "mimeTypes": ["text/html"] },
                    "io.modelcontextprotocol/enterprise-managed-authorization": {}
                }
            })
        );
    }

    #[test]
    fn ema_01_extensions_are_off_by_default() {
        assert!(!ClientCapabilities::default().supports_enterprise_managed_authorization());
        assert!(!ServerCapabilities::default().supports_enterprise_managed_authorization());
        let other: ClientCapabilities = serde_json::from_value(json!({
            "extensions": { "io.modelcontextprotocol/tasks": {} }
        }))
        .unwrap();
        assert!(!other.supports_enterprise_managed_authorization());
    }

    #[test]
    fn a_peer_declaration_with_settings_still_counts() {
        let caps: ClientCapabilities = serde_json::from_value(json!({
            "extensions": { EXTENSION_ID: { "future": true } }
        }))
        .unwrap();
        assert!(caps.supports_enterprise_managed_authorization());
    }

    #[test]
    fn identifiers_are_compared_exactly() {
        for near in [
            "io.modelcontextprotocol/Enterprise-Managed-Authorization",
            "io.modelcontextprotocol/enterprise-managed-authorization ",
            "enterprise-managed-authorization",
        ] {
            let caps: ServerCapabilities =
                serde_json::from_value(json!({ "extensions": { near: {} } })).unwrap();
            assert!(!caps.supports_enterprise_managed_authorization(), "{near}");
        }
    }
}
