//! The CNI verbs over [`PodNetwork`]: [`run`] takes the environment and
//! stdin of one invocation and returns what goes on stdout, or the error
//! to print. Host-side links go in the plugin's own network namespace, as
//! the spec says (the runtime runs the plugin in the node's).

use super::error::{code, CniError};
use super::netconf::{request_version, NetConf, SUPPORTED_VERSIONS};
use super::request::{Command, Request};
use super::result::CniResult;
use crate::netns::NetnsError;
use crate::pod::{PodNetwork, PodNetworkError};
use crate::store::StoreError;
use noderun_core::ipam::IpamError;
use std::collections::HashSet;

/// Carry out one invocation: `Ok(Some(json))` to print, `Ok(None)` for a
/// silent success (DEL, CHECK, STATUS, GC).
pub fn run(request: &Request, stdin: &[u8]) -> Result<Option<String>, CniError> {
    if request.command == Command::Version {
        return Ok(Some(version_json(stdin)));
    }
    let conf = NetConf::parse(stdin)?;
    let network = PodNetwork::new(conf.network_config()?).map_err(from_pod_error)?;
    match request.command {
        Command::Add => add(request, &conf, &network).map(Some),
        Command::Del => network
            .del(&request.container_id, &request.ifname)
            .map(|()| None)
            .map_err(from_pod_error),
        Command::Check => check(request, &conf, &network).map(|()| None),
        Command::Status => network.store().state().map(|_| None).map_err(|e| {
            CniError::new(code::NOT_AVAILABLE, "the IPAM state cannot be read")
                .with_details(e.to_string())
        }),
        Command::Gc => gc(&conf, &network).map(|()| None),
        Command::Version => unreachable!("answered above"),
    }
}

fn add(request: &Request, conf: &NetConf, network: &PodNetwork) -> Result<String, CniError> {
    let prev = conf
        .prev_result
        .as_ref()
        .map(CniResult::from_prev)
        .transpose()?;
    let netns = request
        .netns
        .as_deref()
        .expect("checked by Request::from_env");
    let att = network
        .add(netns, &request.container_id, &request.ifname)
        .map_err(from_pod_error)?;
    let result = CniResult::with_attachment(
        prev,
        &conf.cni_version,
        &network.config().bridge,
        &att,
        netns,
    );
    Ok(result.to_json())
}

/// The attachment is as ADD left it, and the chain's result lists it.
fn check(request: &Request, conf: &NetConf, network: &PodNetwork) -> Result<(), CniError> {
    let prev = conf.prev_result.as_ref().ok_or_else(|| {
        CniError::new(
            code::INVALID_NETWORK_CONFIG,
            "CHECK needs the prevResult of the ADD it checks",
        )
    })?;
    let prev = CniResult::from_prev(prev)?;
    let netns = request
        .netns
        .as_deref()
        .expect("checked by Request::from_env");
    let att = network
        .check(netns, &request.container_id, &request.ifname)
        .map_err(from_pod_error)?;
    if !prev.has_attachment(&att) {
        return Err(CniError::new(
            code::CHECK_FAILED,
            format!(
                "container {}: prevResult does not list {}/{} on {}",
                att.container_id,
                att.ip,
                att.subnet.prefix(),
                att.ifname
            ),
        ));
    }
    Ok(())
}

/// Remove every attachment (veth, masquerade entry, address) that is not
/// in `cni.dev/valid-attachments`.
fn gc(conf: &NetConf, network: &PodNetwork) -> Result<(), CniError> {
    let valid = conf.valid_attachments.as_ref().ok_or_else(|| {
        CniError::new(
            code::INVALID_NETWORK_CONFIG,
            "GC needs cni.dev/valid-attachments",
        )
    })?;
    let live: HashSet<(&str, &str)> = valid
        .iter()
        .map(|a| (a.container_id.as_str(), a.ifname.as_str()))
        .collect();
    network
        .gc(|owner| live.contains(&(owner.container_id.as_str(), owner.ifname.as_str())))
        .map(|_| ())
        .map_err(from_pod_error)
}

fn version_json(stdin: &[u8]) -> String {
    serde_json::json!({
        "cniVersion": request_version(stdin),
        "supportedVersions": SUPPORTED_VERSIONS,
    })
    .to_string()
}

/// The spec's code for a library error; the message keeps its context.
pub fn from_pod_error(err: PodNetworkError) -> CniError {
    let code = match &err {
        PodNetworkError::Config(_) | PodNetworkError::NotABridge { .. } => {
            code::INVALID_NETWORK_CONFIG
        }
        PodNetworkError::Store(store) => match store {
            StoreError::Ipam {
                source: IpamError::Exhausted { .. },
                ..
            } => code::NO_ADDRESSES,
            StoreError::Ipam { .. } | StoreError::BadNetworkName(_) => code::INVALID_NETWORK_CONFIG,
            StoreError::Lock { .. } => code::TRY_AGAIN_LATER,
            StoreError::Io { .. } | StoreError::Corrupt { .. } | StoreError::BadBootId { .. } => {
                code::IO_FAILURE
            }
        },
        PodNetworkError::Netns(NetnsError::Open { .. }) => code::UNKNOWN_CONTAINER,
        PodNetworkError::Netns(_)
        | PodNetworkError::Netlink { .. }
        | PodNetworkError::IfnameTaken { .. } => code::NETWORK_SETUP,
        PodNetworkError::Vanished { .. } => code::TRY_AGAIN_LATER,
        PodNetworkError::Masquerade { .. } => code::NETWORK_SETUP,
        PodNetworkError::Check { .. } => code::CHECK_FAILED,
    };
    CniError::new(code, err.to_string())
}
