//! A client's command line as ordered flags. The adapter writes its flags
//! first; a spec's config overrides then replace a flag of the same name
//! (so it is never given twice) or are appended. Flags the adapter manages
//! (network, data dir, JWT, engine API, ports) cannot be overridden.

use super::RenderError;
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Arg {
    /// A subcommand (`bn`, `node`, `beacon`).
    Word(String),
    /// `--key` when the value is `None`, else `--key=value`.
    Flag(String, Option<String>),
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Flags {
    args: Vec<Arg>,
}

impl Flags {
    pub fn new() -> Flags {
        Flags::default()
    }

    pub fn word(mut self, w: &str) -> Flags {
        self.args.push(Arg::Word(w.into()));
        self
    }

    /// `--key=value`.
    pub fn set(mut self, key: &str, value: impl ToString) -> Flags {
        self.args.push(Arg::Flag(key.into(), Some(value.to_string())));
        self
    }

    /// `--key` alone (a switch).
    pub fn on(mut self, key: &str) -> Flags {
        self.args.push(Arg::Flag(key.into(), None));
        self
    }

    /// `then(self)` when `cond` holds (an archive node's flag, a pod's), else unchanged.
    pub fn when(self, cond: bool, then: impl FnOnce(Flags) -> Flags) -> Flags {
        if cond {
            then(self)
        } else {
            self
        }
    }

    /// Whether the adapter or an override set `key`.
    pub fn has(&self, key: &str) -> bool {
        self.args.iter().any(|a| matches!(a, Arg::Flag(k, _) if k.eq_ignore_ascii_case(key)))
    }

    /// Drop `key` (an override that switches a default off, e.g. a genesis-sync opt-out
    /// that must not be given beside a checkpoint URL).
    pub fn remove(mut self, key: &str) -> Flags {
        self.args.retain(|a| !matches!(a, Arg::Flag(k, _) if k.eq_ignore_ascii_case(key)));
        self
    }

    /// Apply a spec's overrides: each replaces the flag of its name or is
    /// appended (an empty value is a switch). `managed` keys are refused.
    pub fn overridden(mut self, client: &str, overrides: &BTreeMap<String, String>, managed: &[&str]) -> Result<Flags, RenderError> {
        for (key, value) in overrides {
            if managed.iter().any(|m| m.eq_ignore_ascii_case(key)) {
                return Err(RenderError::ManagedKey { client: client.into(), key: key.clone() });
            }
            if novacula_core::validate::names_host_path(value) {
                return Err(RenderError::HostPath { client: client.into(), key: key.clone() });
            }
            let value = (!value.is_empty()).then(|| value.clone());
            match self.args.iter_mut().find(|a| matches!(a, Arg::Flag(k, _) if k.eq_ignore_ascii_case(key))) {
                Some(Arg::Flag(_, v)) => *v = value,
                _ => self.args.push(Arg::Flag(key.clone(), value)),
            }
        }
        Ok(self)
    }

    pub fn into_args(self) -> Vec<String> {
        self.args
            .into_iter()
            .map(|a| match a {
                Arg::Word(w) => w,
                Arg::Flag(k, None) => format!("--{k}"),
                Arg::Flag(k, Some(v)) => format!("--{k}={v}"),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_replace_or_append_and_managed_keys_are_refused() {
        let base = Flags::new().word("bn").set("network", "mainnet").set("checkpoint-sync-url", "https://a").on("http");
        let o = BTreeMap::from([("checkpoint-sync-url".to_string(), "https://b".to_string()), ("target-peers".to_string(), "80".to_string())]);
        let args = base.clone().overridden("lighthouse", &o, &["network"]).unwrap().into_args();
        assert_eq!(args, ["bn", "--network=mainnet", "--checkpoint-sync-url=https://b", "--http", "--target-peers=80"]);
        let o = BTreeMap::from([("Network".to_string(), "sepolia".to_string())]);
        let err = base.overridden("lighthouse", &o, &["network"]).unwrap_err();
        assert!(err.to_string().contains("\"Network\" is set by the adapter"), "{err}");
    }
}
