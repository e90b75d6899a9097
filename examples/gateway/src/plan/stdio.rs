//! `[upstream.stdio]`, planned: the command, the child's environment (nothing of the
//! gateway's but the allow-listed names, never a variable the configuration reads a secret
//! from), how the credential reaches the child, and the lifecycle limits.

use std::collections::{BTreeMap, BTreeSet};

use crate::config::{
    Config, ConfigError, CredentialConfig, Isolation, StdioConfig, UpstreamConfig, invalid,
};
use crate::plan::Planner;
use crate::plan::upstream::{Context, CredentialPlan};
use crate::upstream::stdio::{ChildEnvironment, StdioSpec};

/// Every environment variable `config` reads a secret from (they never reach a child).
pub(crate) fn secret_envs(config: &Config) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    names.extend(config.idp.client.secret_env.clone());
    if let Some(admin) = &config.admin {
        names.extend(admin.api.token_env.clone());
    }
    for upstream in &config.upstreams {
        match &upstream.credential {
            CredentialConfig::IdJag { client, .. }
            | CredentialConfig::ClientCredentials { client, .. } => {
                names.extend(client.secret_env.clone());
            }
            CredentialConfig::Static { secret_env, .. }
            | CredentialConfig::HeaderTemplate { secret_env, .. } => {
                names.extend(secret_env.clone());
            }
            _ => {}
        }
    }
    names
}

/// An environment variable name: `[A-Za-z_][A-Za-z0-9_]*`, at most 128 bytes.
fn is_env_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 128
        && !bytes[0].is_ascii_digit()
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'_')
}

impl Planner<'_> {
    /// `[upstream.stdio]` of `upstream`, whose credential is planned as `credential`.
    pub(crate) fn stdio(
        &mut self,
        key: &str,
        upstream: &UpstreamConfig,
        stdio: &StdioConfig,
        credential: &CredentialPlan,
        context: &Context<'_>,
    ) -> Result<StdioSpec, ConfigError> {
        let skey = format!("{key}.stdio");
        let program = &stdio.program;
        if program.is_empty() || program.contains('\0') {
            return Err(invalid(
                format!("{skey}.program"),
                "must be a program name or path",
            ));
        }
        if stdio.args.iter().any(|a| a.contains('\0')) {
            return Err(invalid(
                format!("{skey}.args"),
                "an argument holds a NUL byte",
            ));
        }
        let mut seen = BTreeSet::new();
        for name in &stdio.env_allow {
            if !is_env_name(name) {
                return Err(invalid(
                    format!("{skey}.env_allow"),
                    format!("{name:?} is not a variable name"),
                ));
            }
            if context.secret_envs.contains(name) {
                return Err(invalid(
                    format!("{skey}.env_allow"),
                    format!("{name} holds a secret of the gateway's configuration"),
                ));
            }
            seen.insert(name.as_str());
        }
        for (name, value) in &stdio.env {
            if !is_env_name(name) {
                return Err(invalid(
                    format!("{skey}.env"),
                    format!("{name:?} is not a variable name"),
                ));
            }
            if value.contains('\0') {
                return Err(invalid(format!("{skey}.env.{name}"), "holds a NUL byte"));
            }
            if !seen.insert(name.as_str()) {
                return Err(invalid(format!("{skey}.env.{name}"), "also in env_allow"));
            }
        }
        if !program.contains('/') && !seen.contains("PATH") {
            return Err(invalid(
                format!("{skey}.program"),
                "a bare name is looked up in the child's PATH: give an absolute path, or allow PATH (env_allow) or set it (env)",
            ));
        }
        let per_user_mode = matches!(
            credential,
            CredentialPlan::IdJag(_)
                | CredentialPlan::HeaderTemplate { .. }
                | CredentialPlan::Passthrough
        );
        if stdio.isolation == Isolation::Shared && per_user_mode {
            return Err(invalid(
                format!("{skey}.isolation"),
                format!(
                    "shared: one process cannot hold the per-user credentials of mode {}",
                    credential.mode()
                ),
            ));
        }
        match (&stdio.credential_env, credential) {
            (None, CredentialPlan::None) => {}
            (None, _) => {
                return Err(invalid(
                    format!("{skey}.credential_env"),
                    format!(
                        "required: where the child gets the credential of mode {}",
                        credential.mode()
                    ),
                ));
            }
            (Some(_), CredentialPlan::None) => {
                return Err(invalid(
                    format!("{skey}.credential_env"),
                    "mode none has no credential",
                ));
            }
            (Some(_), CredentialPlan::HeaderTemplate { credential, .. })
                if credential.header_count() != 1 =>
            {
                return Err(invalid(
                    format!("{skey}.credential_env"),
                    "the header_template mode must set exactly one header for a stdio upstream",
                ));
            }
            (Some(name), _) => {
                if !is_env_name(name) {
                    return Err(invalid(
                        format!("{skey}.credential_env"),
                        format!("{name:?} is not a variable name"),
                    ));
                }
                if seen.contains(name.as_str()) {
                    return Err(invalid(
                        format!("{skey}.credential_env"),
                        format!("{name} is also in env_allow or env"),
                    ));
                }
            }
        }
        if matches!(credential, CredentialPlan::Passthrough) {
            self.warn(
                &skey,
                "passthrough: the caller's IdP token is placed in the child's environment",
            );
        }
        if stdio.idle_timeout.0.is_zero() {
            return Err(invalid(format!("{skey}.idle_timeout"), "must be positive"));
        }
        if stdio.max_processes == 0 {
            return Err(invalid(format!("{skey}.max_processes"), "must be positive"));
        }
        if stdio.restart_backoff.0.is_zero() {
            return Err(invalid(
                format!("{skey}.restart_backoff"),
                "must be positive",
            ));
        }
        if stdio.max_restart_backoff.0 < stdio.restart_backoff.0 {
            return Err(invalid(
                format!("{skey}.max_restart_backoff"),
                "must be at least restart_backoff",
            ));
        }
        let inherited: BTreeMap<String, Option<String>> = stdio
            .env_allow
            .iter()
            .map(|name| (name.clone(), self.environment.var(name)))
            .collect();
        Ok(StdioSpec {
            program: program.clone(),
            args: stdio.args.clone(),
            working_dir: stdio.working_dir.clone(),
            env: ChildEnvironment::new(inherited, stdio.env.clone()),
            credential_env: stdio.credential_env.clone(),
            isolation: stdio.isolation,
            start_timeout: upstream.connect_timeout.0,
            call_timeout: upstream.read_timeout.0,
            idle_timeout: stdio.idle_timeout.0,
            max_processes: stdio.max_processes,
            restart_backoff: stdio.restart_backoff.0,
            max_restart_backoff: stdio.max_restart_backoff.0,
        })
    }
}
