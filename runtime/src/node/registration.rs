//! The node's Node object: made at start (or found, when the node was
//! registered before), then its status (capacity, allocatable, the Ready
//! condition, addresses, system info) sent at start and every
//! `status_every`, and at once when someone else (the node lifecycle
//! controller) changed the Ready condition.

use super::{facts, NodeContext, NodeError};
use noderun_core::proto::ErrorCode;
use noderun_core::{
    resource, ConditionStatus, Kind, Node, NodeAddress, NodeAddressType, NodeCondition,
    NodeConditionType, NodeSpec, NodeStatus, Object, ObjectMeta, Quantity, ResourceList, Time,
};

/// Memory held back from pods: kubelet's default hard eviction threshold
/// (memory.available < 100Mi).
const RESERVED_MEMORY: i64 = 100 * 1024 * 1024;

/// The status this node reports now; `previous` keeps the Ready
/// condition's transition time when it was already True.
pub fn node_status(
    ctx: &NodeContext,
    capacity: facts::Capacity,
    previous: &NodeStatus,
    now: Time,
) -> NodeStatus {
    let config = &ctx.config;
    let list = |cpus: i64, memory: i64| -> ResourceList {
        [
            (resource::CPU.to_string(), Quantity::from_units(cpus)),
            (resource::MEMORY.to_string(), Quantity::from_bytes(memory)),
            (
                resource::PODS.to_string(),
                Quantity::from_units(config.max_pods),
            ),
        ]
        .into()
    };
    let was_ready = previous
        .condition(NodeConditionType::Ready)
        .filter(|c| c.status == ConditionStatus::True);
    let ready = NodeCondition {
        type_: NodeConditionType::Ready,
        status: ConditionStatus::True,
        last_heartbeat_time: Some(now),
        last_transition_time: was_ready.and_then(|c| c.last_transition_time).or(Some(now)),
        reason: "NodeReady".into(),
        message: "noderun is posting ready status".into(),
    };
    // Other conditions (set by others) are kept as they are.
    let mut conditions: Vec<NodeCondition> = previous
        .conditions
        .iter()
        .filter(|c| c.type_ != NodeConditionType::Ready)
        .cloned()
        .collect();
    conditions.insert(0, ready);
    NodeStatus {
        capacity: list(capacity.cpus, capacity.memory_bytes),
        allocatable: list(
            capacity.cpus,
            (capacity.memory_bytes - RESERVED_MEMORY).max(0),
        ),
        conditions,
        addresses: vec![
            NodeAddress {
                type_: NodeAddressType::InternalIp,
                address: config.node_ip.to_string(),
            },
            NodeAddress {
                type_: NodeAddressType::Hostname,
                address: facts::hostname(),
            },
        ],
        node_info: facts::system_info(),
    }
}

fn new_node(ctx: &NodeContext) -> Node {
    let config = &ctx.config;
    let mut metadata = ObjectMeta::named("", &config.node_name);
    metadata.labels = config.labels.clone();
    metadata
        .labels
        .insert("kubernetes.io/hostname".into(), config.node_name.clone());
    metadata
        .labels
        .insert("kubernetes.io/os".into(), "linux".into());
    Node {
        metadata,
        spec: NodeSpec {
            pod_cidr: config.pod_cidr.clone(),
            pod_cidrs: vec![config.pod_cidr.clone()],
            unschedulable: false,
            taints: config.taints.clone(),
        },
        status: NodeStatus::default(),
    }
}

/// Create the Node (or find it) and send its status.
pub async fn register(ctx: &NodeContext) -> Result<(), NodeError> {
    let client = ctx.api.client().await;
    let name = &ctx.config.node_name;
    let node = match client.create(Object::Node(new_node(ctx))).await {
        Ok(o) => o,
        Err(e) if e.code() == Some(ErrorCode::AlreadyExists) => {
            tracing::info!(node = %name, "node registered before; its labels and taints stay as they are");
            client
                .get(Kind::Node, "", name)
                .await
                .map_err(NodeError::api(format!("reading node {name}")))?
        }
        Err(e) => return Err(NodeError::api(format!("registering node {name}"))(e)),
    };
    let Object::Node(node) = node else {
        unreachable!("the apiserver answered a node get with another kind");
    };
    send_status(ctx, node).await
}

/// Send the node's status on top of `node` (retrying a lost
/// compare-and-swap on a fresh read).
async fn send_status(ctx: &NodeContext, mut node: Node) -> Result<(), NodeError> {
    let name = &ctx.config.node_name;
    let capacity = facts::capacity()?;
    let mut attempts = 0;
    loop {
        attempts += 1;
        node.status = node_status(ctx, capacity, &node.status, Time::now());
        let client = ctx.api.client().await;
        match client.update_status(Object::Node(node.clone())).await {
            Ok(_) => return Ok(()),
            Err(e) if e.code() == Some(ErrorCode::Conflict) && attempts < 5 => {
                if let Object::Node(fresh) = client
                    .get(Kind::Node, "", name)
                    .await
                    .map_err(NodeError::api(format!("reading node {name}")))?
                {
                    node = fresh;
                }
            }
            Err(e) => {
                ctx.api.recover(&e).await;
                return Err(NodeError::api(format!(
                    "updating the status of node {name}"
                ))(e));
            }
        }
    }
}

/// Read the Node and send its status again.
pub async fn refresh(ctx: &NodeContext) -> Result<(), NodeError> {
    let name = &ctx.config.node_name;
    let client = ctx.api.client().await;
    match client.get(Kind::Node, "", name).await {
        Ok(Object::Node(node)) => send_status(ctx, node).await,
        Ok(_) => unreachable!("the apiserver answered a node get with another kind"),
        // Deleted by an admin: register again, as the kubelet does.
        Err(e) if e.code() == Some(ErrorCode::NotFound) => register(ctx).await,
        Err(e) => {
            ctx.api.recover(&e).await;
            Err(NodeError::api(format!("reading node {name}"))(e))
        }
    }
}
