//! The heartbeat: the node's Lease in `noderun-node-lease`, renewed every
//! `lease_renew` (10 s; the node lifecycle controller waits 40 s before
//! it calls the node unreachable), and the Node's status re-sent every
//! `status_every` (which also puts Ready back to True after the
//! controller marked it Unknown during an outage).

use super::{registration, NodeContext, NodeError};
use noderun_core::proto::ErrorCode;
use noderun_core::{Kind, Lease, LeaseSpec, Object, ObjectMeta, Time, NODE_LEASE_NAMESPACE};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::{Instant, MissedTickBehavior};

/// A fresh lease held by this node.
fn new_lease(ctx: &NodeContext, now: Time) -> Lease {
    let name = &ctx.config.node_name;
    Lease {
        metadata: ObjectMeta::named(NODE_LEASE_NAMESPACE, name),
        spec: LeaseSpec {
            holder_identity: name.clone(),
            lease_duration_seconds: ctx.config.lease_duration.as_secs().try_into().unwrap_or(40),
            acquire_time: Some(now),
            renew_time: Some(now),
            lease_transitions: 0,
        },
    }
}

/// Renew the lease once: read it (create it if missing), set renewTime,
/// write it back. Returns the stored lease for the next renewal.
pub async fn renew(ctx: &NodeContext, known: Option<Lease>) -> Result<Lease, NodeError> {
    let name = &ctx.config.node_name;
    let client = ctx.api.client().await;
    let doing = || format!("renewing the lease of node {name}");
    let now = Time::now();
    let result = match known {
        Some(mut lease) => {
            lease.spec.renew_time = Some(now);
            lease.spec.holder_identity = name.clone();
            client.update(Object::Lease(lease)).await
        }
        None => match client.get(Kind::Lease, NODE_LEASE_NAMESPACE, name).await {
            Ok(Object::Lease(mut lease)) => {
                lease.spec.renew_time = Some(now);
                lease.spec.holder_identity = name.clone();
                client.update(Object::Lease(lease)).await
            }
            Ok(_) => unreachable!("the apiserver answered a lease get with another kind"),
            Err(e) if e.code() == Some(ErrorCode::NotFound) => {
                client.create(Object::Lease(new_lease(ctx, now))).await
            }
            Err(e) => Err(e),
        },
    };
    match result {
        Ok(Object::Lease(lease)) => Ok(lease),
        Ok(_) => unreachable!("the apiserver answered a lease write with another kind"),
        Err(e) => {
            ctx.api.recover(&e).await;
            Err(NodeError::api(doing())(e))
        }
    }
}

/// Renew the lease and refresh the node's status until `stop`.
pub async fn heartbeat(ctx: Arc<NodeContext>, mut stop: tokio::sync::watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(ctx.config.lease_renew);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut lease: Option<Lease> = None;
    let mut status_due = Instant::now() + ctx.config.status_every;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        match renew(&ctx, lease.take()).await {
            Ok(l) => lease = Some(l),
            // A conflict or an outage: the next round reads it afresh.
            Err(e) => tracing::warn!(error = %e, "lease renewal failed"),
        }
        if Instant::now() >= status_due {
            status_due = Instant::now() + ctx.config.status_every;
            if let Err(e) = registration::refresh(&ctx).await {
                tracing::warn!(error = %e, "node status update failed");
                // Try again at the next renewal.
                status_due = Instant::now() + Duration::ZERO;
            }
        }
    }
}
