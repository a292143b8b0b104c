//! Chain IDs: the name of a stack of layers, so that every image that
//! starts with the same layers shares their snapshots.
//! `chainID(L0) = diffID(L0)`, `chainID(Ln) = sha256(chainID(Ln-1) + " " +
//! diffID(Ln))`, both written as `sha256:<hex>` (the OCI image spec's
//! definition).

use crate::image::Digest;
use std::fmt;

/// The identity of a layer stack (a committed snapshot).
#[derive(
    Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct ChainId(pub Digest);

impl ChainId {
    /// The chain ID of `diff_id` stacked on `parent` (or alone, as a base).
    pub fn extend(parent: Option<&ChainId>, diff_id: &Digest) -> ChainId {
        match parent {
            None => ChainId(*diff_id),
            Some(parent) => ChainId(Digest::of(format!("{} {}", parent.0, diff_id).as_bytes())),
        }
    }

    /// Parse `sha256:<hex>`.
    pub fn parse(s: &str) -> Result<ChainId, crate::image::DigestError> {
        Digest::parse(s).map(ChainId)
    }

    /// The underlying digest.
    pub fn digest(&self) -> &Digest {
        &self.0
    }
}

impl fmt::Display for ChainId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl fmt::Debug for ChainId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ChainId({})", self.0)
    }
}

/// The chain ID of every prefix of `diff_ids` (base layer first): entry
/// `i` names layers `0..=i`.
pub fn chain_ids(diff_ids: &[Digest]) -> Vec<ChainId> {
    let mut out: Vec<ChainId> = Vec::with_capacity(diff_ids.len());
    for diff_id in diff_ids {
        let next = ChainId::extend(out.last(), diff_id);
        out.push(next);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_ids_match_values_computed_independently() {
        // Expected values from Python's hashlib over the same strings.
        let diffs: Vec<Digest> = ["layer-0", "layer-1", "layer-2"]
            .iter()
            .map(|s| Digest::of(s.as_bytes()))
            .collect();
        let chain: Vec<String> = chain_ids(&diffs).iter().map(ToString::to_string).collect();
        assert_eq!(
            chain,
            [
                "sha256:ff5eba71a8188ea1e1d463b58f6ad20fb3736ae6e2fe50bc84a5a2c672c95e35",
                "sha256:5f6d0bbaeb87c061087581d0bb11f33c74cb36cf29cc61ae268000b23e76d7ea",
                "sha256:cfbc7be4da896d221fd750e87b75e0c564321f2edc36435f7c5c7afd7d27478a",
            ]
        );
        assert!(chain_ids(&[]).is_empty());
    }

    #[test]
    fn a_shared_prefix_gives_shared_chain_ids() {
        let d = |s: &str| Digest::of(s.as_bytes());
        let a = chain_ids(&[d("base"), d("app-a")]);
        let b = chain_ids(&[d("base"), d("app-b")]);
        assert_eq!(a[0], b[0]);
        assert_ne!(a[1], b[1]);
    }
}
