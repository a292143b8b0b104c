//! [`Request`]: what the runtime passes a CNI plugin in its environment
//! (`CNI_COMMAND`, `CNI_CONTAINERID`, `CNI_NETNS`, `CNI_IFNAME`,
//! `CNI_ARGS`, `CNI_PATH`), checked per verb as the spec requires. The
//! environment is read through a lookup function so the rules are tested
//! without touching the process's own.

use super::error::{code, CniError};
use std::path::PathBuf;

/// A CNI verb.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    Add,
    Del,
    Check,
    Version,
    Status,
    Gc,
}

impl Command {
    fn parse(name: &str) -> Option<Command> {
        Some(match name {
            "ADD" => Command::Add,
            "DEL" => Command::Del,
            "CHECK" => Command::Check,
            "VERSION" => Command::Version,
            "STATUS" => Command::Status,
            "GC" => Command::Gc,
            _ => return None,
        })
    }

    /// Whether the verb is about one attachment (needs a container ID and
    /// an interface name).
    fn per_attachment(self) -> bool {
        matches!(self, Command::Add | Command::Del | Command::Check)
    }
}

/// A plugin invocation's environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub command: Command,
    /// Empty for VERSION, STATUS and GC.
    pub container_id: String,
    /// Required for ADD and CHECK; DEL may come without one.
    pub netns: Option<PathBuf>,
    /// Empty for VERSION, STATUS and GC.
    pub ifname: String,
    /// `CNI_ARGS` as `key=value` pairs.
    pub args: Vec<(String, String)>,
    /// `CNI_PATH`, the directories other plugins are looked up in.
    pub path: Vec<PathBuf>,
}

impl Request {
    /// Read and check the `CNI_*` variables through `lookup`.
    pub fn from_env(lookup: impl Fn(&str) -> Option<String>) -> Result<Request, CniError> {
        let get = |name: &str| lookup(name).filter(|v| !v.is_empty());
        let missing =
            |name: &str| CniError::new(code::INVALID_ENVIRONMENT, format!("{name} is not set"));
        let verb = get("CNI_COMMAND").ok_or_else(|| missing("CNI_COMMAND"))?;
        let command = Command::parse(&verb).ok_or_else(|| {
            CniError::new(
                code::INVALID_ENVIRONMENT,
                format!("CNI_COMMAND {verb:?} is not a CNI verb: ADD, DEL, CHECK, VERSION, STATUS or GC"),
            )
        })?;
        let mut request = Request {
            command,
            container_id: String::new(),
            netns: get("CNI_NETNS").map(PathBuf::from),
            ifname: String::new(),
            args: parse_args(&get("CNI_ARGS").unwrap_or_default())?,
            path: get("CNI_PATH")
                .map(|p| {
                    p.split(':')
                        .filter(|d| !d.is_empty())
                        .map(PathBuf::from)
                        .collect()
                })
                .unwrap_or_default(),
        };
        if command.per_attachment() {
            request.container_id =
                get("CNI_CONTAINERID").ok_or_else(|| missing("CNI_CONTAINERID"))?;
            request.ifname = get("CNI_IFNAME").ok_or_else(|| missing("CNI_IFNAME"))?;
            if command != Command::Del && request.netns.is_none() {
                return Err(missing("CNI_NETNS"));
            }
        }
        Ok(request)
    }
}

/// `CNI_ARGS`: `K1=V1;K2=V2`.
fn parse_args(raw: &str) -> Result<Vec<(String, String)>, CniError> {
    raw.split(';')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            pair.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .ok_or_else(|| {
                    CniError::new(
                        code::INVALID_ENVIRONMENT,
                        format!("CNI_ARGS entry {pair:?} is not KEY=VALUE"),
                    )
                })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn add_needs_container_netns_and_ifname() {
        let full = [
            ("CNI_COMMAND", "ADD"),
            ("CNI_CONTAINERID", "c1"),
            ("CNI_NETNS", "/run/netns/p"),
            ("CNI_IFNAME", "eth0"),
            ("CNI_ARGS", "IgnoreUnknown=1;K8S_POD_NAME=web"),
            ("CNI_PATH", "/usr/lib/cni:/opt/cni/bin"),
        ];
        let req = Request::from_env(env(&full)).unwrap();
        assert_eq!(req.command, Command::Add);
        assert_eq!(
            req.netns.as_deref(),
            Some(std::path::Path::new("/run/netns/p"))
        );
        assert_eq!(req.args[1], ("K8S_POD_NAME".into(), "web".into()));
        assert_eq!(req.path.len(), 2);
        for drop in ["CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME"] {
            let partial: Vec<_> = full.iter().copied().filter(|(k, _)| *k != drop).collect();
            let err = Request::from_env(env(&partial)).unwrap_err();
            assert_eq!(err.code, code::INVALID_ENVIRONMENT, "{drop}");
            assert!(err.msg.contains(drop), "{err}");
        }
    }

    #[test]
    fn del_may_lack_netns_and_version_needs_only_the_verb() {
        let del = [
            ("CNI_COMMAND", "DEL"),
            ("CNI_CONTAINERID", "c"),
            ("CNI_IFNAME", "eth0"),
        ];
        assert_eq!(Request::from_env(env(&del)).unwrap().netns, None);
        for verb in ["VERSION", "STATUS", "GC"] {
            let only = [("CNI_COMMAND", verb)];
            Request::from_env(env(&only)).unwrap();
        }
    }

    #[test]
    fn bad_verbs_and_args_are_environment_errors() {
        for bad in [
            &[][..],
            &[("CNI_COMMAND", "ATTACH")][..],
            &[("CNI_COMMAND", "VERSION"), ("CNI_ARGS", "novalue")][..],
        ] {
            let err = Request::from_env(env(bad)).unwrap_err();
            assert_eq!(err.code, code::INVALID_ENVIRONMENT, "{bad:?}");
        }
    }
}
