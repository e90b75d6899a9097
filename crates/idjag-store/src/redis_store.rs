//! The Redis backend, for many instances sharing one state.
//!
//! # Data layout
//!
//! Every key starts with the configured prefix (default `idjag:`):
//!
//! | Redis key | type | holds |
//! |---|---|---|
//! | `<prefix><namespace>:<hex key>` | string, `PXAT` expiry | one entry |
//! | `<prefix><namespace>#idx` | sorted set, score = expiry | the keys of an indexed namespace, for [`Store::scan`] |
//! | `<prefix><namespace>#q:<hex SHA-256 of group>` | sorted set, score = expiry | one quota group's live insertions |
//! | `<prefix><namespace>#cap:<hex SHA-256 of group>` | sorted set, score = expiry | one cap group's entries (capped namespaces) |
//! | `<prefix><namespace>#capof:<hex key>` | string, the entry's expiry | the cap groups (their Redis keys) one entry counts in |
//! | channel `<prefix>ch:<channel>` | pub/sub | notifications |
//!
//! # Atomicity
//!
//! A single-use marker without quota is one `SET key value NX PXAT <expiry>`. Every other
//! primitive that touches more than one key, or reads and writes, is one Lua script (`EVALSHA`,
//! loaded again after a server restart), which Redis runs without interleaving any other
//! command. `take` returns the value and deletes it in that one script, so of concurrent
//! callers exactly one gets it. The scripts touch keys they do not declare (the scan reads the
//! entries its index names), so Redis Cluster is not supported: use one primary (with
//! replicas and Sentinel for failover, knowing that Redis replication is asynchronous and a
//! failover may lose the last writes).
//!
//! # Expiry and clocks
//!
//! Expiry times are absolute (`PXAT`), computed from the injected clock: the instances and the
//! Redis server must agree on the time (NTP). An entry is live only while both agree it is.
//!
//! # Failure
//!
//! Commands go through redis-rs's `ConnectionManager`: one multiplexed connection, created
//! lazily, re-established in the background after an I/O error. While the server is away every
//! command fails with [`StoreError::Unavailable`] (or [`StoreError::Timeout`] after the
//! command timeout); nothing is retried on our side, since a retried `SET NX` whose first
//! attempt did land would report our own marker as a replay (which still fails closed). The
//! same store object works again as soon as the server is back. Notifications use a separate
//! connection, re-established by a background task; after each (re)subscription every
//! subscriber gets [`Notification::Gap`] so it re-reads the state it may have missed.
//!
//! # Durability
//!
//! What survives a Redis restart depends on the server's persistence (`appendonly yes` with
//! `appendfsync always` for every acknowledged write; the default RDB snapshots lose the last
//! minutes). Configure it for the guarantee you need.

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use idjag_core::SharedClock;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, IntoConnectionInfo, Script, Value};
use zeroize::Zeroizing;

use crate::error::StoreError;
use crate::store::{
    Cap, Channel, Entry, LocalBus, Namespace, Notification, Quota, Store, Subscription, Swap,
    UnixMillis, check_caps, check_key, check_quota, check_write, digest, hex, is_live, now_millis,
    unhex,
};

/// Default timeout for establishing a connection.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Default timeout for one command.
pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_millis(500);
/// Default key prefix.
pub const DEFAULT_KEY_PREFIX: &str = "idjag:";

/// PEM material for TLS (`rediss://`).
#[derive(Clone, Default)]
#[non_exhaustive]
pub struct RedisTls {
    /// CA certificates (PEM) to trust instead of the system roots.
    pub root_certificates_pem: Option<Vec<u8>>,
    /// A client certificate chain and key (PEM) for mutual TLS.
    pub client_identity_pem: Option<(Vec<u8>, Zeroizing<Vec<u8>>)>,
}

impl std::fmt::Debug for RedisTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisTls")
            .field("root_certificates", &self.root_certificates_pem.is_some())
            .field("client_identity", &self.client_identity_pem.is_some())
            .finish()
    }
}

/// How to reach Redis.
#[derive(Clone)]
#[non_exhaustive]
pub struct RedisOptions {
    /// `redis://host:port/db` or `rediss://host:port/db` (TLS). Credentials belong in
    /// `username`/`password`, not in the URL.
    pub url: String,
    /// The ACL user (Redis 6+); `None` for the default user.
    pub username: Option<String>,
    /// The password (`AUTH`).
    pub password: Option<Zeroizing<String>>,
    /// TLS material for `rediss://` URLs.
    pub tls: RedisTls,
    /// Timeout for establishing a connection.
    pub connect_timeout: Duration,
    /// Timeout for one command's answer (a command that must first reconnect may also take
    /// up to `connect_timeout`).
    pub command_timeout: Duration,
    /// Prefix of every key and channel.
    pub key_prefix: String,
}

impl std::fmt::Debug for RedisOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisOptions")
            .field("url", &self.url)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "[redacted]"))
            .field("tls", &self.tls)
            .field("connect_timeout", &self.connect_timeout)
            .field("command_timeout", &self.command_timeout)
            .field("key_prefix", &self.key_prefix)
            .finish()
    }
}

impl RedisOptions {
    /// Options for `url` with the default timeouts and prefix.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            username: None,
            password: None,
            tls: RedisTls::default(),
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            command_timeout: DEFAULT_COMMAND_TIMEOUT,
            key_prefix: DEFAULT_KEY_PREFIX.to_owned(),
        }
    }
}

/// Why the Redis options are not usable.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RedisConfigError {
    /// The URL does not parse, or its scheme is not `redis` or `rediss`.
    #[error("invalid Redis URL (expected redis:// or rediss://)")]
    InvalidUrl,
    /// The URL carries a password: put it in the password setting (from an environment
    /// variable or a file) instead, so it does not end up in logs.
    #[error("the Redis URL must not carry a password")]
    PasswordInUrl,
    /// TLS material was given for a `redis://` URL.
    #[error("TLS settings need a rediss:// URL")]
    TlsWithoutRediss,
    /// The TLS material does not parse.
    #[error("invalid TLS material for Redis")]
    InvalidTls,
    /// No Tokio runtime is running (the store starts a background task).
    #[error("the Redis store must be created inside a Tokio runtime")]
    NoRuntime,
}

struct Keys {
    prefix: String,
}

impl Keys {
    fn entry(&self, ns: Namespace, key: &[u8]) -> String {
        format!("{}{}:{}", self.prefix, ns.name(), hex(key))
    }
    fn entry_prefix(&self, ns: Namespace) -> String {
        format!("{}{}:", self.prefix, ns.name())
    }
    fn index(&self, ns: Namespace) -> String {
        format!("{}{}#idx", self.prefix, ns.name())
    }
    fn quota(&self, ns: Namespace, group: &[u8]) -> String {
        format!("{}{}#q:{}", self.prefix, ns.name(), hex(&digest(&[group])))
    }
    fn cap(&self, ns: Namespace, group: &[u8]) -> String {
        format!(
            "{}{}#cap:{}",
            self.prefix,
            ns.name(),
            hex(&digest(&[group]))
        )
    }
    fn cap_of(&self, ns: Namespace, key: &[u8]) -> String {
        format!("{}{}#capof:{}", self.prefix, ns.name(), hex(key))
    }
    fn channel(&self, channel: Channel) -> String {
        format!("{}ch:{}", self.prefix, channel.name())
    }
}

/// Lua shared by the scripts that change a capped namespace's entries: `cap_move` keeps an
/// entry in its cap groups with a new expiry, `cap_leave` takes it out of them.
const CAP_LUA: &str = r"
local function cap_expire(k, exp)
  if exp == '' then redis.call('PERSIST', k) else redis.call('PEXPIREAT', k, exp) end
end
local function cap_move(capof, member, exp)
  local groups = redis.call('GET', capof)
  if not groups then return end
  local score = exp
  if exp == '' then score = '+inf' end
  for g in string.gmatch(groups, '[^\n]+') do
    redis.call('ZADD', g, 'XX', score, member)
    local last = redis.call('ZRANGE', g, -1, -1, 'WITHSCORES')
    if last[2] == 'inf' then
      redis.call('PERSIST', g)
    elseif last[2] then
      redis.call('PEXPIREAT', g, last[2])
    end
  end
  cap_expire(capof, exp)
end
local function cap_leave(capof, member)
  local groups = redis.call('GET', capof)
  if not groups then return end
  for g in string.gmatch(groups, '[^\n]+') do redis.call('ZREM', g, member) end
  redis.call('DEL', capof)
end
";

fn with_caps(body: &str) -> Script {
    Script::new(&format!("{CAP_LUA}{body}"))
}

/// KEYS: entry, index, quota, capof, then one cap group per cap. ARGV: value, expiry ('' =
/// never), now, limit ('' = none), member, indexed ('1'/'0'), capped ('1'/'0'), then one
/// limit per cap. Returns 1 (stored), 0 (present), -1 (quota exceeded), -2 - i (cap i
/// reached). Every check comes before the first write.
static INSERT: LazyLock<Script> = LazyLock::new(|| {
    with_caps(
        r"
local exp = ARGV[2]
local score = exp
if exp == '' then score = '+inf' end
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
if ARGV[4] ~= '' then
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', ARGV[3])
  if redis.call('ZCARD', KEYS[3]) >= tonumber(ARGV[4]) then return -1 end
end
for i = 5, #KEYS do
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', ARGV[3])
  if redis.call('ZCARD', KEYS[i]) >= tonumber(ARGV[i + 3]) then return -2 - (i - 5) end
end
if ARGV[4] ~= '' then
  redis.call('ZADD', KEYS[3], score, ARGV[5])
  local last = redis.call('ZRANGE', KEYS[3], -1, -1, 'WITHSCORES')
  redis.call('PEXPIREAT', KEYS[3], last[2])
end
if exp == '' then
  redis.call('SET', KEYS[1], ARGV[1])
else
  redis.call('SET', KEYS[1], ARGV[1], 'PXAT', exp)
end
if ARGV[6] == '1' then redis.call('ZADD', KEYS[2], score, ARGV[5]) end
if ARGV[7] == '1' then cap_leave(KEYS[4], ARGV[5]) end
if #KEYS > 4 then
  local groups = {}
  for i = 5, #KEYS do
    redis.call('ZADD', KEYS[i], score, ARGV[5])
    local last = redis.call('ZRANGE', KEYS[i], -1, -1, 'WITHSCORES')
    redis.call('PEXPIREAT', KEYS[i], last[2])
    groups[#groups + 1] = KEYS[i]
  end
  redis.call('SET', KEYS[4], table.concat(groups, '\n'), 'PXAT', exp)
end
return 1
",
    )
});

/// KEYS: entry, index, capof. ARGV: value, expiry ('' = never), member, indexed, capped.
/// Sets unconditionally; a capped entry stays in its groups with the new expiry.
static PUT: LazyLock<Script> = LazyLock::new(|| {
    with_caps(
        r"
local score = ARGV[2]
if ARGV[2] == '' then
  score = '+inf'
  redis.call('SET', KEYS[1], ARGV[1])
else
  redis.call('SET', KEYS[1], ARGV[1], 'PXAT', ARGV[2])
end
if ARGV[4] == '1' then redis.call('ZADD', KEYS[2], score, ARGV[3]) end
if ARGV[5] == '1' then cap_move(KEYS[3], ARGV[3], ARGV[2]) end
return 1
",
    )
});

/// KEYS: entry. Returns {value, PEXPIRETIME} or false.
static GET: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local v = redis.call('GET', KEYS[1])
if not v then return false end
return {v, redis.call('PEXPIRETIME', KEYS[1])}
",
    )
});

/// KEYS: entry, index, capof. ARGV: member, indexed, capped. Returns {value, PEXPIRETIME}
/// or false, and deletes the entry (out of its cap groups).
static TAKE: LazyLock<Script> = LazyLock::new(|| {
    with_caps(
        r"
local v = redis.call('GET', KEYS[1])
if not v then return false end
local t = redis.call('PEXPIRETIME', KEYS[1])
redis.call('DEL', KEYS[1])
if ARGV[2] == '1' then redis.call('ZREM', KEYS[2], ARGV[1]) end
if ARGV[3] == '1' then cap_leave(KEYS[3], ARGV[1]) end
return {v, t}
",
    )
});

/// KEYS: entry, index, capof. ARGV: has expected ('1'/'0'), expected, op
/// ('set'/'release'/'del'), value, expiry ('' = never), member, indexed, capped. Returns 1
/// (applied) or 0.
static CAS: LazyLock<Script> = LazyLock::new(|| {
    with_caps(
        r"
local cur = redis.call('GET', KEYS[1])
if ARGV[1] == '1' then
  if (not cur) or cur ~= ARGV[2] then return 0 end
else
  if cur then return 0 end
end
if ARGV[3] == 'del' then
  redis.call('DEL', KEYS[1])
  if ARGV[7] == '1' then redis.call('ZREM', KEYS[2], ARGV[6]) end
  if ARGV[8] == '1' then cap_leave(KEYS[3], ARGV[6]) end
  return 1
end
local score = ARGV[5]
if score == '' then
  score = '+inf'
  redis.call('SET', KEYS[1], ARGV[4])
else
  redis.call('SET', KEYS[1], ARGV[4], 'PXAT', ARGV[5])
end
if ARGV[7] == '1' then redis.call('ZADD', KEYS[2], score, ARGV[6]) end
if ARGV[8] == '1' then
  if ARGV[3] == 'release' or not cur then
    cap_leave(KEYS[3], ARGV[6])
  else
    cap_move(KEYS[3], ARGV[6], ARGV[5])
  end
end
return 1
",
    )
});

/// KEYS: entry, index, capof. ARGV: member, indexed, capped. Returns 1 if a value was
/// deleted (and takes it out of its cap groups).
static REMOVE: LazyLock<Script> = LazyLock::new(|| {
    with_caps(
        r"
local n = redis.call('DEL', KEYS[1])
if ARGV[2] == '1' then redis.call('ZREM', KEYS[2], ARGV[1]) end
if ARGV[3] == '1' then cap_leave(KEYS[3], ARGV[1]) end
return n
",
    )
});

/// KEYS: index. ARGV: now, limit, entry prefix. Returns -1 if more than `limit` live
/// members, else a flat list {member, value, PEXPIRETIME, ...}.
static SCAN: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) > tonumber(ARGV[2]) then return -1 end
local out = {}
for _, m in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local k = ARGV[3] .. m
  local v = redis.call('GET', k)
  if v then
    out[#out + 1] = m
    out[#out + 1] = v
    out[#out + 1] = redis.call('PEXPIRETIME', k)
  end
end
return out
",
    )
});

/// Aborts the background task when the store is dropped.
#[derive(Debug)]
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The Redis [`Store`]. See the [module docs](self) for the data layout, atomicity, failure
/// and durability.
#[derive(Clone)]
pub struct RedisStore {
    inner: Arc<Inner>,
}

struct Inner {
    manager: ConnectionManager,
    keys: Keys,
    clock: SharedClock,
    deadline: Duration,
    bus: Arc<LocalBus>,
    url: String,
    _pubsub: AbortOnDrop,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("url", &self.inner.url)
            .field("prefix", &self.inner.keys.prefix)
            .finish_non_exhaustive()
    }
}

fn client(options: &RedisOptions) -> Result<Client, RedisConfigError> {
    let url = url::Url::parse(&options.url).map_err(|_| RedisConfigError::InvalidUrl)?;
    let tls = match url.scheme() {
        "redis" => false,
        "rediss" => true,
        _ => return Err(RedisConfigError::InvalidUrl),
    };
    if url.password().is_some() {
        return Err(RedisConfigError::PasswordInUrl);
    }
    let tls_material =
        options.tls.root_certificates_pem.is_some() || options.tls.client_identity_pem.is_some();
    if tls_material && !tls {
        return Err(RedisConfigError::TlsWithoutRediss);
    }
    let mut info = options
        .url
        .as_str()
        .into_connection_info()
        .map_err(|_| RedisConfigError::InvalidUrl)?;
    let mut settings = info.redis_settings().clone();
    if let Some(user) = &options.username {
        settings = settings.set_username(user);
    }
    if let Some(password) = &options.password {
        settings = settings.set_password(password.as_str());
    }
    info = info.set_redis_settings(settings);
    if tls_material {
        Client::build_with_tls(
            info,
            redis::TlsCertificates {
                client_tls: options.tls.client_identity_pem.as_ref().map(|(cert, key)| {
                    redis::ClientTlsConfig {
                        client_cert: cert.clone(),
                        client_key: key.to_vec(),
                    }
                }),
                root_cert: options.tls.root_certificates_pem.clone(),
            },
        )
        .map_err(|_| RedisConfigError::InvalidTls)
    } else {
        Client::open(info).map_err(|_| RedisConfigError::InvalidUrl)
    }
}

/// Parses the URL and TLS material without connecting.
pub(crate) fn validate(options: &RedisOptions) -> Result<(), RedisConfigError> {
    client(options).map(|_| ())
}

fn map_err(e: &redis::RedisError) -> StoreError {
    let auth = e.kind() == redis::ErrorKind::AuthenticationFailed
        || matches!(e.code(), Some("NOAUTH" | "WRONGPASS" | "NOPERM"));
    tracing::warn!(target: "idjag_store", error = %e, "redis store error");
    if auth {
        StoreError::AuthenticationFailed
    } else if e.is_timeout() {
        StoreError::Timeout
    } else {
        StoreError::Unavailable
    }
}

fn expiry_arg(expires_at: Option<UnixMillis>) -> String {
    expires_at.map(|at| at.to_string()).unwrap_or_default()
}

fn indexed_arg(ns: Namespace) -> &'static str {
    if ns.is_indexed() { "1" } else { "0" }
}

fn capped_arg(ns: Namespace) -> &'static str {
    if ns.is_capped() { "1" } else { "0" }
}

/// `{value, pexpiretime}` or nil → an entry.
fn parse_entry(value: Value, ns: Namespace, now: UnixMillis) -> Result<Option<Entry>, StoreError> {
    match value {
        Value::Nil => Ok(None),
        Value::Array(items) => {
            let mut items = items.into_iter();
            match (items.next(), items.next()) {
                (Some(Value::BulkString(v)), Some(Value::Int(t))) => {
                    let entry = Entry::new(v, (t >= 0).then_some(t));
                    Ok(is_live(entry.expires_at, now).then_some(entry))
                }
                _ => Err(StoreError::Corrupt { namespace: ns }),
            }
        }
        _ => Err(StoreError::Corrupt { namespace: ns }),
    }
}

impl RedisStore {
    /// A store for `options`. It does not connect yet: the first command (or [`ping`]) does,
    /// and the notification task keeps trying in the background. Must be called inside a
    /// Tokio runtime.
    ///
    /// [`ping`]: Store::ping
    pub fn new(options: RedisOptions, clock: SharedClock) -> Result<Self, RedisConfigError> {
        let runtime =
            tokio::runtime::Handle::try_current().map_err(|_| RedisConfigError::NoRuntime)?;
        let client = client(&options)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(options.connect_timeout))
            .set_response_timeout(Some(options.command_timeout))
            .set_number_of_retries(2)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_secs(1));
        let manager = ConnectionManager::new_lazy_with_config(client.clone(), config)
            .map_err(|_| RedisConfigError::InvalidUrl)?;
        let keys = Keys {
            prefix: options.key_prefix.clone(),
        };
        let bus = Arc::new(LocalBus::new());
        let channels: Vec<(String, Channel)> = Channel::ALL
            .iter()
            .map(|c| (keys.channel(*c), *c))
            .collect();
        let pubsub = runtime.spawn(pubsub_loop(
            client,
            channels,
            Arc::downgrade(&bus),
            options.connect_timeout,
            options.command_timeout,
        ));
        let mut url = url::Url::parse(&options.url).map_err(|_| RedisConfigError::InvalidUrl)?;
        let _ = url.set_username("");
        Ok(Self {
            inner: Arc::new(Inner {
                manager,
                keys,
                clock,
                // The connection manager enforces the command timeout; this bounds a command
                // that must first (re)connect.
                deadline: options.connect_timeout + options.command_timeout,
                bus,
                url: url.to_string(),
                _pubsub: AbortOnDrop(pubsub),
            }),
        })
    }

    fn now(&self) -> UnixMillis {
        now_millis(&self.inner.clock)
    }

    async fn run<T: redis::FromRedisValue>(
        &self,
        invocation: &redis::ScriptInvocation<'_>,
    ) -> Result<T, StoreError> {
        let mut con = self.inner.manager.clone();
        match tokio::time::timeout(self.inner.deadline, invocation.invoke_async(&mut con)).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(map_err(&e)),
            Err(_) => Err(StoreError::Timeout),
        }
    }

    /// `insert_if_absent` and `insert_capped`: one `SET NX` when nothing else is to be
    /// kept, else the `INSERT` script.
    async fn insert(
        &self,
        ns: Namespace,
        key: &[u8],
        value: &[u8],
        expires_at: Option<UnixMillis>,
        quota: Option<Quota<'_>>,
        caps: &[Cap<'_>],
    ) -> Result<bool, StoreError> {
        let now = self.now();
        check_write(key, value, expires_at, now)?;
        check_quota(&quota, expires_at)?;
        let entry = self.inner.keys.entry(ns, key);
        if quota.is_none() && !ns.is_indexed() && !ns.is_capped() {
            let mut cmd = redis::cmd("SET");
            cmd.arg(&entry).arg(value).arg("NX");
            if let Some(at) = expires_at {
                cmd.arg("PXAT").arg(at);
            }
            let set: Option<String> = self.command(&cmd).await?;
            return Ok(set.is_some());
        }
        let (quota_key, limit) = match quota {
            Some(q) => (self.inner.keys.quota(ns, q.group), q.limit.to_string()),
            None => (self.inner.keys.quota(ns, b""), String::new()),
        };
        let mut inv = INSERT.prepare_invoke();
        inv.key(&entry)
            .key(self.inner.keys.index(ns))
            .key(quota_key)
            .key(self.inner.keys.cap_of(ns, key));
        for cap in caps {
            inv.key(self.inner.keys.cap(ns, cap.group));
        }
        inv.arg(value)
            .arg(expiry_arg(expires_at))
            .arg(now)
            .arg(limit)
            .arg(hex(key))
            .arg(indexed_arg(ns))
            .arg(capped_arg(ns));
        for cap in caps {
            inv.arg(cap.limit);
        }
        match self.run::<i64>(&inv).await? {
            1 => Ok(true),
            0 => Ok(false),
            -1 => Err(StoreError::QuotaExceeded { namespace: ns }),
            code => Err(StoreError::CapReached {
                namespace: ns,
                index: usize::try_from(-2 - code).unwrap_or(usize::MAX),
            }),
        }
    }

    async fn command<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> Result<T, StoreError> {
        let mut con = self.inner.manager.clone();
        match tokio::time::timeout(self.inner.deadline, cmd.query_async(&mut con)).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(map_err(&e)),
            Err(_) => Err(StoreError::Timeout),
        }
    }
}

/// Keeps one pub/sub connection subscribed to every channel and fans messages out to the
/// local subscribers; tells them of every gap.
async fn pubsub_loop(
    client: Client,
    channels: Vec<(String, Channel)>,
    bus: std::sync::Weak<LocalBus>,
    connect_timeout: Duration,
    command_timeout: Duration,
) {
    let mut backoff = Duration::from_millis(50);
    loop {
        let connected = async {
            let pubsub = tokio::time::timeout(connect_timeout, client.get_async_pubsub())
                .await
                .ok()?
                .ok()?;
            let (mut sink, stream) = pubsub.split();
            let names: Vec<&str> = channels.iter().map(|(n, _)| n.as_str()).collect();
            tokio::time::timeout(command_timeout, sink.subscribe(&names))
                .await
                .ok()?
                .ok()?;
            Some((sink, stream))
        }
        .await;
        if let Some((mut sink, mut stream)) = connected {
            backoff = Duration::from_millis(50);
            let Some(b) = bus.upgrade() else { return };
            // Subscribed now: whatever was published before may have been missed.
            b.send_all(&Notification::Gap);
            drop(b);
            let mut ping = tokio::time::interval(Duration::from_secs(5));
            ping.tick().await;
            loop {
                tokio::select! {
                    msg = stream.next() => {
                        let Some(msg) = msg else { break };
                        let Some(b) = bus.upgrade() else { return };
                        if let Some((_, channel)) =
                            channels.iter().find(|(n, _)| n == msg.get_channel_name())
                        {
                            b.send(*channel, Notification::Message(msg.get_payload_bytes().to_vec()));
                        }
                    }
                    _ = ping.tick() => {
                        let alive = tokio::time::timeout(command_timeout, sink.ping::<Value>()).await;
                        if !matches!(alive, Ok(Ok(_))) {
                            break;
                        }
                    }
                }
            }
            match bus.upgrade() {
                Some(b) => b.send_all(&Notification::Gap),
                None => return,
            }
        }
        if bus.strong_count() == 0 {
            return;
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(1));
    }
}

#[async_trait]
impl Store for RedisStore {
    fn backend(&self) -> &'static str {
        "redis"
    }

    async fn insert_if_absent(
        &self,
        ns: Namespace,
        key: &[u8],
        value: &[u8],
        expires_at: Option<UnixMillis>,
        quota: Option<Quota<'_>>,
    ) -> Result<bool, StoreError> {
        self.insert(ns, key, value, expires_at, quota, &[]).await
    }

    async fn insert_capped(
        &self,
        ns: Namespace,
        key: &[u8],
        value: &[u8],
        expires_at: UnixMillis,
        quota: Option<Quota<'_>>,
        caps: &[Cap<'_>],
    ) -> Result<bool, StoreError> {
        check_caps(ns, caps)?;
        self.insert(ns, key, value, Some(expires_at), quota, caps)
            .await
    }

    async fn put(
        &self,
        ns: Namespace,
        key: &[u8],
        value: &[u8],
        expires_at: Option<UnixMillis>,
    ) -> Result<(), StoreError> {
        check_write(key, value, expires_at, self.now())?;
        let entry = self.inner.keys.entry(ns, key);
        if !ns.is_indexed() && !ns.is_capped() {
            let mut cmd = redis::cmd("SET");
            cmd.arg(&entry).arg(value);
            if let Some(at) = expires_at {
                cmd.arg("PXAT").arg(at);
            }
            return self.command::<Value>(&cmd).await.map(|_| ());
        }
        let mut inv = PUT.prepare_invoke();
        inv.key(&entry)
            .key(self.inner.keys.index(ns))
            .key(self.inner.keys.cap_of(ns, key))
            .arg(value)
            .arg(expiry_arg(expires_at))
            .arg(hex(key))
            .arg(indexed_arg(ns))
            .arg(capped_arg(ns));
        self.run::<Value>(&inv).await.map(|_| ())
    }

    async fn get(&self, ns: Namespace, key: &[u8]) -> Result<Option<Entry>, StoreError> {
        check_key(key)?;
        let mut inv = GET.prepare_invoke();
        inv.key(self.inner.keys.entry(ns, key));
        let value: Value = self.run(&inv).await?;
        parse_entry(value, ns, self.now())
    }

    async fn take(&self, ns: Namespace, key: &[u8]) -> Result<Option<Entry>, StoreError> {
        check_key(key)?;
        let mut inv = TAKE.prepare_invoke();
        inv.key(self.inner.keys.entry(ns, key))
            .key(self.inner.keys.index(ns))
            .key(self.inner.keys.cap_of(ns, key))
            .arg(hex(key))
            .arg(indexed_arg(ns))
            .arg(capped_arg(ns));
        let value: Value = self.run(&inv).await?;
        parse_entry(value, ns, self.now())
    }

    async fn compare_and_swap(
        &self,
        ns: Namespace,
        key: &[u8],
        expected: Option<&[u8]>,
        new: Swap<'_>,
    ) -> Result<bool, StoreError> {
        let now = self.now();
        let mut inv = CAS.prepare_invoke();
        inv.key(self.inner.keys.entry(ns, key))
            .key(self.inner.keys.index(ns))
            .key(self.inner.keys.cap_of(ns, key))
            .arg(if expected.is_some() { "1" } else { "0" })
            .arg(expected.unwrap_or_default());
        match new {
            Swap::Set(value, expires_at) | Swap::Release(value, expires_at) => {
                check_write(key, value, expires_at, now)?;
                let op = if matches!(new, Swap::Release(..)) {
                    "release"
                } else {
                    "set"
                };
                inv.arg(op).arg(value).arg(expiry_arg(expires_at));
            }
            Swap::Delete => {
                check_key(key)?;
                inv.arg("del").arg("").arg("");
            }
        }
        inv.arg(hex(key)).arg(indexed_arg(ns)).arg(capped_arg(ns));
        Ok(self.run::<i64>(&inv).await? == 1)
    }

    async fn remove(&self, ns: Namespace, key: &[u8]) -> Result<bool, StoreError> {
        check_key(key)?;
        let mut inv = REMOVE.prepare_invoke();
        inv.key(self.inner.keys.entry(ns, key))
            .key(self.inner.keys.index(ns))
            .key(self.inner.keys.cap_of(ns, key))
            .arg(hex(key))
            .arg(indexed_arg(ns))
            .arg(capped_arg(ns));
        Ok(self.run::<i64>(&inv).await? == 1)
    }

    async fn scan(&self, ns: Namespace, limit: usize) -> Result<Vec<(Vec<u8>, Entry)>, StoreError> {
        if !ns.is_indexed() {
            return Err(StoreError::NotScannable { namespace: ns });
        }
        let now = self.now();
        let mut inv = SCAN.prepare_invoke();
        inv.key(self.inner.keys.index(ns))
            .arg(now)
            .arg(limit)
            .arg(self.inner.keys.entry_prefix(ns));
        let corrupt = StoreError::Corrupt { namespace: ns };
        match self.run::<Value>(&inv).await? {
            Value::Int(-1) => Err(StoreError::TooMany {
                namespace: ns,
                limit,
            }),
            Value::Array(items) => {
                let mut out = Vec::with_capacity(items.len() / 3);
                let mut items = items.into_iter();
                while let Some(member) = items.next() {
                    let (
                        Value::BulkString(member),
                        Some(Value::BulkString(v)),
                        Some(Value::Int(t)),
                    ) = (member, items.next(), items.next())
                    else {
                        return Err(corrupt);
                    };
                    let key = unhex(&member).ok_or(corrupt.clone())?;
                    let entry = Entry::new(v, (t >= 0).then_some(t));
                    if is_live(entry.expires_at, now) {
                        out.push((key, entry));
                    }
                }
                Ok(out)
            }
            _ => Err(corrupt),
        }
    }

    async fn publish(&self, channel: Channel, message: &[u8]) -> Result<(), StoreError> {
        let mut cmd = redis::cmd("PUBLISH");
        cmd.arg(self.inner.keys.channel(channel)).arg(message);
        self.command::<i64>(&cmd).await.map(|_| ())
    }

    fn subscribe(&self, channel: Channel) -> Subscription {
        self.inner.bus.subscribe(channel)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.command::<Value>(&redis::cmd("PING")).await.map(|_| ())
    }
}
