//! Init containers as kubelet runs them: in spec order, each to
//! completion (exit 0) before the next is started, all before any app
//! container. A failed init container is started again unless the pod's
//! restart policy is Never (then the pod has failed); under Always it
//! restarts only on failure, as under OnFailure. Pure decisions over the
//! observed states; the worker acts on them.

use noderun_core::{ContainerState, RestartPolicy};

/// What the init containers call for next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitStep {
    /// All completed (or there are none): the app containers may run.
    Done,
    /// Init container `i` is next and not made yet: start it.
    Start(usize),
    /// Init container `i` runs, or exited with a failure (the restart
    /// policy decides on that, like for any exit).
    Wait(usize),
}

/// The next step, from the init containers' observed states in spec
/// order.
pub fn next_step(states: &[ContainerState]) -> InitStep {
    for (i, s) in states.iter().enumerate() {
        match &s.terminated {
            Some(t) if t.exit_code == 0 => continue,
            Some(_) => return InitStep::Wait(i),
            None if s.running.is_some() => return InitStep::Wait(i),
            None => return InitStep::Start(i),
        }
    }
    InitStep::Done
}

/// The restart policy that applies to an init container of a pod with
/// `policy`: a completed init container never runs again.
pub fn init_policy(policy: RestartPolicy) -> RestartPolicy {
    match policy {
        RestartPolicy::Never => RestartPolicy::Never,
        RestartPolicy::Always | RestartPolicy::OnFailure => RestartPolicy::OnFailure,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use noderun_core::{ContainerStateRunning, ContainerStateTerminated, ContainerStateWaiting};

    fn exited(code: i32) -> ContainerState {
        ContainerState {
            terminated: Some(ContainerStateTerminated {
                exit_code: code,
                ..ContainerStateTerminated::default()
            }),
            ..ContainerState::default()
        }
    }

    fn running() -> ContainerState {
        ContainerState {
            running: Some(ContainerStateRunning::default()),
            ..ContainerState::default()
        }
    }

    fn absent() -> ContainerState {
        ContainerState {
            waiting: Some(ContainerStateWaiting {
                reason: "PodInitializing".into(),
                message: String::new(),
            }),
            ..ContainerState::default()
        }
    }

    #[test]
    fn one_at_a_time_in_order() {
        use InitStep::*;
        let cases: [(Vec<ContainerState>, InitStep); 7] = [
            (vec![], Done),
            (vec![absent(), absent()], Start(0)),
            (vec![running(), absent()], Wait(0)),
            (vec![exited(0), absent()], Start(1)),
            (vec![exited(0), running()], Wait(1)),
            (vec![exited(0), exited(0)], Done),
            // A failure holds the sequence at that container.
            (vec![exited(0), exited(2)], Wait(1)),
        ];
        for (states, want) in cases {
            assert_eq!(next_step(&states), want, "{states:?}");
        }
    }

    #[test]
    fn init_containers_restart_only_on_failure() {
        use RestartPolicy::*;
        assert_eq!(init_policy(Always), OnFailure);
        assert_eq!(init_policy(OnFailure), OnFailure);
        assert_eq!(init_policy(Never), Never);
    }
}
