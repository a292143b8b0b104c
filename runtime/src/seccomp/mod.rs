//! The spec's `linux.seccomp` profile, compiled to classic BPF with
//! `seccompiler` and loaded with the seccomp(2) syscall.
//!
//! An OCI profile has one default action and rules that each give a list
//! of syscalls (optionally with argument conditions) an action of their
//! own. A seccompiler filter has exactly one match and one mismatch action,
//! so a profile becomes a small stack of filters, and the kernel, which
//! runs every filter and keeps the most severe verdict, combines them:
//!
//! - when the default is not "allow": one filter that allows every syscall
//!   some rule mentions (with that rule's conditions) and applies the
//!   default to everything else;
//! - one filter per other action (say, ERRNO with ENOSYS, or LOG) that
//!   applies it to that action's syscalls and allows everything else.
//!
//! Limits, stated rather than hidden: only x86_64 is compiled (a 32-bit or
//! x32 syscall fails the filter's architecture check and kills the
//! process, stricter than runc's multi-architecture filters);
//! `SCMP_ACT_NOTIFY` (a user-space listener) is refused; several
//! conditions in one rule must all hold (libseccomp ORs repeated
//! conditions on the same argument).

mod syscalls;

use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompFilterFlag,
    LinuxSeccompOperator,
};
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};
use std::collections::BTreeMap;

pub use syscalls::number as syscall_number;

#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    #[error("linux.seccomp: {action} needs a seccomp notify listener, which nrc does not provide")]
    Notify { action: &'static str },
    #[error(
        "linux.seccomp.architectures {0:?} does not include x86_64, the only one nrc compiles for"
    )]
    Architecture(Vec<Arch>),
    #[error("linux.seccomp.syscalls[{rule}]: argument index {index} is out of range (0-5)")]
    ArgIndex { rule: usize, index: usize },
    #[error("linux.seccomp.syscalls[{rule}]: SCMP_CMP_MASKED_EQ needs valueTwo")]
    MaskedEq { rule: usize },
    #[error("linux.seccomp: building the BPF filter for {what}: {source}")]
    Compile {
        what: String,
        #[source]
        source: seccompiler::BackendError,
    },
    #[error("linux.seccomp: loading filter {index} of {count} ({len} instructions): {errno}")]
    Load {
        index: usize,
        count: usize,
        len: usize,
        errno: nix::errno::Errno,
    },
}

/// A compiled profile: the filters to stack, in load order, and the
/// seccomp(2) flags to load them with.
#[derive(Debug, Clone)]
pub struct Profile {
    filters: Vec<BpfProgram>,
    flags: libc::c_ulong,
}

/// What a rule or the default does, in a form that can key a map.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Verdict {
    KillThread,
    KillProcess,
    Trap,
    Errno(u32),
    Trace(u32),
    Log,
    Allow,
}

impl Verdict {
    fn from_spec(
        action: LinuxSeccompAction,
        errno: Option<u32>,
        context: &'static str,
    ) -> Result<Verdict, SeccompError> {
        let errno = errno.unwrap_or(libc::EPERM as u32);
        Ok(match action {
            LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => {
                Verdict::KillThread
            }
            LinuxSeccompAction::ScmpActKillProcess => Verdict::KillProcess,
            LinuxSeccompAction::ScmpActTrap => Verdict::Trap,
            LinuxSeccompAction::ScmpActErrno => Verdict::Errno(errno),
            LinuxSeccompAction::ScmpActTrace => Verdict::Trace(errno),
            LinuxSeccompAction::ScmpActLog => Verdict::Log,
            LinuxSeccompAction::ScmpActAllow => Verdict::Allow,
            LinuxSeccompAction::ScmpActNotify => {
                return Err(SeccompError::Notify { action: context })
            }
        })
    }

    fn action(self) -> SeccompAction {
        match self {
            Verdict::KillThread => SeccompAction::KillThread,
            Verdict::KillProcess => SeccompAction::KillProcess,
            Verdict::Trap => SeccompAction::Trap,
            Verdict::Errno(e) => SeccompAction::Errno(e),
            Verdict::Trace(d) => SeccompAction::Trace(d),
            Verdict::Log => SeccompAction::Log,
            Verdict::Allow => SeccompAction::Allow,
        }
    }
}

/// The rules one filter matches, per syscall number. A syscall named
/// without conditions matches whatever its other rules say.
#[derive(Default)]
struct Matches(BTreeMap<i64, Option<Vec<SeccompRule>>>);

impl Matches {
    fn add(&mut self, nr: i64, rule: Option<SeccompRule>) {
        let entry = self.0.entry(nr).or_insert_with(|| Some(Vec::new()));
        match (entry.as_mut(), rule) {
            (Some(rules), Some(rule)) => rules.push(rule),
            // Unconditional: the number alone matches.
            (_, None) => *entry = None,
            (None, Some(_)) => {}
        }
    }

    fn into_rules(self) -> BTreeMap<i64, Vec<SeccompRule>> {
        self.0
            .into_iter()
            .map(|(nr, rules)| (nr, rules.unwrap_or_default()))
            .collect()
    }
}

/// Whether the profile lets the syscall `name` through whatever its
/// arguments (allowed or only logged), judged from the spec's rules: no
/// rule that names it may refuse it, and either the default lets it
/// through or a rule without conditions does.
pub fn passes_unconditionally(spec: &LinuxSeccomp, name: &str) -> bool {
    let passes = |a: LinuxSeccompAction| {
        matches!(
            a,
            LinuxSeccompAction::ScmpActAllow | LinuxSeccompAction::ScmpActLog
        )
    };
    let default = spec.default_action();
    let rules: Vec<_> = spec
        .syscalls()
        .iter()
        .flatten()
        .filter(|r| r.names().iter().any(|n| n == name))
        .collect();
    if rules
        .iter()
        .any(|r| !passes(r.action()) && r.action() != default)
    {
        return false;
    }
    passes(default)
        || rules
            .iter()
            .any(|r| passes(r.action()) && r.args().as_ref().is_none_or(|a| a.is_empty()))
}

/// Compile the spec's profile.
pub fn compile(spec: &LinuxSeccomp) -> Result<Profile, SeccompError> {
    if let Some(archs) = spec.architectures() {
        let ours = [Arch::ScmpArchX86_64, Arch::ScmpArchNative];
        if !archs.is_empty() && !archs.iter().any(|a| ours.contains(a)) {
            return Err(SeccompError::Architecture(archs.clone()));
        }
    }
    let default = Verdict::from_spec(
        spec.default_action(),
        spec.default_errno_ret(),
        "defaultAction",
    )?;

    // Every rule whose action differs from the default, by action.
    let mut by_verdict: BTreeMap<Verdict, Matches> = BTreeMap::new();
    let mut not_default = Matches::default();
    for (i, rule) in spec.syscalls().iter().flatten().enumerate() {
        let verdict = Verdict::from_spec(rule.action(), rule.errno_ret(), "a syscalls rule")?;
        if verdict == default {
            continue;
        }
        let condition = conditions(i, rule.args().as_deref().unwrap_or_default())?;
        for name in rule.names() {
            // Names of other architectures or newer kernels are skipped, as
            // runc skips what libseccomp cannot resolve.
            let Some(nr) = syscalls::number(name) else {
                continue;
            };
            not_default.add(nr, condition.clone());
            if verdict != Verdict::Allow {
                by_verdict
                    .entry(verdict)
                    .or_default()
                    .add(nr, condition.clone());
            }
        }
    }

    let mut filters = Vec::new();
    if default != Verdict::Allow {
        filters.push(build(
            not_default,
            default.action(),
            SeccompAction::Allow,
            "the default action",
        )?);
    }
    for (verdict, matches) in by_verdict {
        filters.push(build(
            matches,
            SeccompAction::Allow,
            verdict.action(),
            &format!("{verdict:?}"),
        )?);
    }

    let mut flags = 0;
    for flag in spec.flags().iter().flatten() {
        flags |= match flag {
            LinuxSeccompFilterFlag::SeccompFilterFlagLog => libc::SECCOMP_FILTER_FLAG_LOG,
            LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => {
                libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW
            }
            // One thread loads the filter; TSYNC changes nothing. The
            // notify-only flag has no listener to apply to.
            LinuxSeccompFilterFlag::SeccompFilterFlagTsync
            | LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => 0,
        };
    }
    Ok(Profile { filters, flags })
}

/// One rule's argument conditions, all of which must hold; None when the
/// rule has none.
fn conditions(rule: usize, args: &[LinuxSeccompArg]) -> Result<Option<SeccompRule>, SeccompError> {
    if args.is_empty() {
        return Ok(None);
    }
    let mut out = Vec::with_capacity(args.len());
    for a in args {
        if a.index() > 5 {
            return Err(SeccompError::ArgIndex {
                rule,
                index: a.index(),
            });
        }
        let (op, value) = match a.op() {
            LinuxSeccompOperator::ScmpCmpNe => (SeccompCmpOp::Ne, a.value()),
            LinuxSeccompOperator::ScmpCmpLt => (SeccompCmpOp::Lt, a.value()),
            LinuxSeccompOperator::ScmpCmpLe => (SeccompCmpOp::Le, a.value()),
            LinuxSeccompOperator::ScmpCmpEq => (SeccompCmpOp::Eq, a.value()),
            LinuxSeccompOperator::ScmpCmpGe => (SeccompCmpOp::Ge, a.value()),
            LinuxSeccompOperator::ScmpCmpGt => (SeccompCmpOp::Gt, a.value()),
            // The spec's `value` is the mask, `valueTwo` the wanted value.
            LinuxSeccompOperator::ScmpCmpMaskedEq => (
                SeccompCmpOp::MaskedEq(a.value()),
                a.value_two().ok_or(SeccompError::MaskedEq { rule })?,
            ),
        };
        let what = || format!("syscalls[{rule}] argument {}", a.index());
        let cond = SeccompCondition::new(a.index() as u8, SeccompCmpArgLen::Qword, op, value)
            .map_err(|source| SeccompError::Compile {
                what: what(),
                source,
            })?;
        out.push(cond);
    }
    SeccompRule::new(out)
        .map(Some)
        .map_err(|source| SeccompError::Compile {
            what: format!("syscalls[{rule}]"),
            source,
        })
}

fn build(
    matches: Matches,
    mismatch: SeccompAction,
    matched: SeccompAction,
    what: &str,
) -> Result<BpfProgram, SeccompError> {
    let err = |source| SeccompError::Compile {
        what: what.to_string(),
        source,
    };
    let filter = SeccompFilter::new(matches.into_rules(), mismatch, matched, TargetArch::x86_64)
        .map_err(err)?;
    BpfProgram::try_from(filter).map_err(err)
}

impl Profile {
    /// How many filters the profile stacks.
    pub fn filter_count(&self) -> usize {
        self.filters.len()
    }

    /// Load every filter into the calling thread, in order. The caller
    /// must have no_new_privs set or hold CAP_SYS_ADMIN.
    pub fn load(&self) -> Result<(), SeccompError> {
        let count = self.filters.len();
        for (index, prog) in self.filters.iter().enumerate() {
            let fprog = libc::sock_fprog {
                len: prog.len() as u16,
                // seccompiler's sock_filter is #[repr(C)] with the kernel's
                // layout (u16 code, u8 jt, u8 jf, u32 k), as libc's is.
                filter: prog.as_ptr() as *mut libc::sock_filter,
            };
            // SAFETY: fprog points at `prog`, a live, correctly laid out
            // instruction array of `len` entries; the kernel copies it.
            let r = unsafe {
                libc::syscall(
                    libc::SYS_seccomp,
                    libc::SECCOMP_SET_MODE_FILTER,
                    self.flags,
                    &fprog as *const libc::sock_fprog,
                )
            };
            if r != 0 {
                return Err(SeccompError::Load {
                    index,
                    count,
                    len: prog.len(),
                    errno: nix::errno::Errno::last(),
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
