//! The node's [`PodHost`] over its stores (`<state>/images`,
//! `<state>/snapshots`) and its pod network (a bridge, the pod CIDR, IPAM
//! state under `<run>/netplug`).

use crate::agent::{AgentConfig, AgentError, PodHost, Runner};
use crate::image::{ImageError, ImageStore, PlatformSpec};
use crate::snapshot::{SnapshotError, Snapshotter};
use noderun_netplug::{NetworkConfig, PodNetwork, PodNetworkError};
use std::path::PathBuf;

/// The network's name (its IPAM state directory).
pub const NETWORK_NAME: &str = "pods";

#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error("image store {path}: {source}")]
    Images {
        path: PathBuf,
        #[source]
        source: ImageError,
    },
    #[error("snapshotter {path}: {source}")]
    Snapshots {
        path: PathBuf,
        #[source]
        source: SnapshotError,
    },
    #[error("pod CIDR {cidr:?} is not a CIDR (write 10.88.0.0/24)")]
    Cidr { cidr: String },
    #[error("pod network on bridge {bridge}: {source}")]
    Network {
        bridge: String,
        #[source]
        source: Box<PodNetworkError>,
    },
    #[error("pod host: {0}")]
    Agent(#[from] Box<AgentError>),
}

/// Where the node keeps things and how its pods are wired.
#[derive(Debug, Clone)]
pub struct HostConfig {
    /// Images and snapshots (`/var/lib/noderun`).
    pub state_dir: PathBuf,
    pub agent: AgentConfig,
    /// The bridge pods hang off (`nr0`).
    pub bridge: String,
    pub pod_cidr: String,
    /// Keep the bridge and host veth ends in this network namespace
    /// instead of the daemon's own.
    pub host_netns: Option<PathBuf>,
    /// Masquerade pod traffic that leaves the pod CIDR.
    pub masquerade: bool,
}

impl HostConfig {
    /// The network's settings: the bridge as gateway, IPAM state under
    /// `<run>/netplug` (scoped to the boot, as the pods are).
    pub fn network(&self) -> Result<NetworkConfig, HostError> {
        let subnet = self.pod_cidr.parse().map_err(|_| HostError::Cidr {
            cidr: self.pod_cidr.clone(),
        })?;
        let mut net = NetworkConfig::new(NETWORK_NAME, self.bridge.clone(), subnet);
        net.state_root = self.agent.run_dir.join("netplug");
        net.masquerade = self.masquerade;
        Ok(net)
    }

    /// Open the stores and the network and make the pod host with `runner`.
    pub fn open(&self, runner: Runner) -> Result<PodHost, HostError> {
        let images_dir = self.state_dir.join("images");
        let images = ImageStore::open(&images_dir)
            .map_err(|source| HostError::Images {
                path: images_dir,
                source,
            })?
            .with_platform(PlatformSpec::linux_amd64());
        let snapshots_dir = self.state_dir.join("snapshots");
        let snapshots =
            Snapshotter::new(&snapshots_dir).map_err(|source| HostError::Snapshots {
                path: snapshots_dir,
                source,
            })?;
        let net_err = |source| HostError::Network {
            bridge: self.bridge.clone(),
            source: Box::new(source),
        };
        let mut network = PodNetwork::new(self.network()?).map_err(net_err)?;
        if let Some(ns) = &self.host_netns {
            network = network.with_host_netns(ns).map_err(net_err)?;
        }
        PodHost::new(self.agent.clone(), runner, images, snapshots, network)
            .map_err(|e| HostError::Agent(Box::new(e)))
    }
}
