//! Namespaces: the separate key spaces of the store, each with its own quotas and (when
//! indexed) a scan index.

use std::fmt;

macro_rules! namespaces {
    ($( $(#[$doc:meta])* $variant:ident = ($id:literal, $name:literal, $indexed:literal, $capped:literal), )*) => {
        /// A namespace: a separate key space, with its own quotas, (when indexed) a scan
        /// index and (when capped) the groups of [`Cap`](crate::Cap)s. The names appear in Redis keys and in the associated data of sealed values.
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

            /// Whether entries may count in caps ([`Store::insert_capped`](crate::Store::insert_capped)).
            pub const fn is_capped(self) -> bool {
                match self { $(Self::$variant => $capped,)* }
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
    IdJagReplay = (1, "replay-id-jag", false, false),
    /// Client assertions (`private_key_jwt`): SHA-256 of (`iss`, `jti`).
    ClientAssertionReplay = (2, "replay-client-assertion", false, false),
    /// DPoP proofs: SHA-256 of (key thumbprint, `jti`).
    DpopReplay = (3, "replay-dpop", false, false),
    /// Revoked principals.
    Revocations = (4, "revocations", true, false),
    /// Held calls and their approvals, by approval id.
    Approvals = (5, "approvals", true, true),
    /// The approval id of each gated call, by call key.
    ApprovalCalls = (6, "approval-calls", false, false),
    /// MCP session ids bound to their principal.
    Sessions = (7, "sessions", false, true),
    /// The IdP's signing-key schedule.
    KeySchedule = (8, "key-schedule", false, false),
    /// Authorization codes.
    AuthCodes = (9, "auth-codes", false, false),
    /// Refresh tokens: which family each belongs to.
    RefreshTokens = (10, "refresh-tokens", false, false),
    /// Refresh-token families.
    RefreshFamilies = (11, "refresh-families", false, false),
    /// Stored (sealed) IdP tokens.
    SealedTokens = (12, "sealed-tokens", false, false),
}

impl fmt::Display for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
