//! Namespaces: the separate key spaces of the store, each with its own quotas and (when
//! indexed) a scan index.

use std::fmt;

macro_rules! namespaces {
    ($( $(#[$doc:meta])* $variant:ident = ($id:literal, $name:literal, $indexed:literal), )*) => {
        /// A namespace: a separate key space, with its own quotas and (when indexed) a scan
        /// index. The names appear in Redis keys and in the associated data of sealed values.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum Namespace {
            $( $(#[$doc])* $variant, )*
        }

        impl Namespace {
            /// Every namespace.
            pub const ALL: &'static [Namespace] = &[$(Namespace::$variant),*];

            /// The stable name (Redis key segment, associated data).
            pub const fn name(self) -> &'static str {
                match self { $(Self::$variant => $name,)* }
            }

            /// A stable one-byte id (the embedded database's key prefix).
            pub const fn id(self) -> u8 {
                match self { $(Self::$variant => $id,)* }
            }

            /// Whether the namespace keeps a scan index ([`Store::scan`](crate::Store::scan)).
            pub const fn is_indexed(self) -> bool {
                match self { $(Self::$variant => $indexed,)* }
            }

            /// The namespace with this [`id`](Self::id).
            pub fn from_id(id: u8) -> Option<Self> {
                match id { $($id => Some(Self::$variant),)* _ => None }
            }
        }
    };
}

namespaces! {
    /// Redeemed ID-JAGs: SHA-256 of (`iss`, `jti`).
    IdJagReplay = (1, "replay-id-jag", false),
    /// Client assertions (`private_key_jwt`): SHA-256 of (`iss`, `jti`).
    ClientAssertionReplay = (2, "replay-client-assertion", false),
    /// DPoP proofs: SHA-256 of (key thumbprint, `jti`).
    DpopReplay = (3, "replay-dpop", false),
    /// Revoked principals.
    Revocations = (4, "revocations", true),
    /// Held calls and their approvals, by approval id.
    Approvals = (5, "approvals", true),
    /// The approval id of each gated call, by call key.
    ApprovalCalls = (6, "approval-calls", false),
    /// MCP session ids bound to their principal.
    Sessions = (7, "sessions", false),
    /// The IdP's signing-key schedule.
    KeySchedule = (8, "key-schedule", false),
    /// Authorization codes.
    AuthCodes = (9, "auth-codes", false),
    /// Refresh tokens: which family each belongs to.
    RefreshTokens = (10, "refresh-tokens", false),
    /// Refresh-token families.
    RefreshFamilies = (11, "refresh-families", false),
    /// Stored (sealed) IdP tokens.
    SealedTokens = (12, "sealed-tokens", false),
}

impl fmt::Display for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
