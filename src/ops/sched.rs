//! The CPU scheduling policy of the server's threads (`http.cpu_scheduling`).
//!
//! A request crosses threads: an HTTP worker hands it to a blocking thread or to its tenant's
//! write queue (SQLite), and the answer goes back to the worker. Under the
//! default policy (`SCHED_OTHER`) Linux lets each woken thread preempt the one running on its
//! CPU, so a hand-off often costs a context switch right away, which the thread handing off
//! pays before it can go on with its own queue (on a virtual machine a switch costs
//! microseconds). Under `SCHED_BATCH` a woken thread runs when a CPU frees up or the running
//! thread's slice ends: the same fair share of CPU, fewer switches.
//!
//! Measured on 2 vCPUs shared with the load generator (`benches/RESULTS.md`): task creation by
//! 64 clients over 10 tenants +10 to +30 % per second, the task list +11 to +16 % with its p99
//! unchanged at 64 connections, at the price of the board's p99 under 1,000 connections
//! (~0.9 → ~1.1 s). A lone request waits for nothing: with a CPU idle, a woken thread runs at
//! once.
//!
//! The policy is set on the main thread before any other starts, so every thread of the
//! process inherits it. A process started with a niceness other than 0 keeps the scheduling
//! it was given: whoever set that chose for it. Child processes (the Claude Code CLI runtime)
//! inherit the policy too.

use serde::Deserialize;
use thread_priority::{
    NormalThreadSchedulePolicy, ThreadPriority, ThreadPriorityOsValue, ThreadSchedulePolicy,
    set_thread_priority_and_policy, thread_native_id,
};

/// How the server's threads are scheduled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum CpuScheduling {
    /// `SCHED_BATCH`: no wakeup preemption between the server's threads (the default).
    #[default]
    Batch,
    /// The policy the process was started with (usually `SCHED_OTHER`), left as it is.
    Normal,
}

/// Applies `policy` to the calling thread, and so to every thread it starts afterwards.
pub fn apply(policy: CpuScheduling) {
    if policy == CpuScheduling::Normal {
        return;
    }
    match rustix::process::getpriority_process(None) {
        Ok(0) => {}
        Ok(nice) => {
            tracing::info!(nice, "started with a niceness: keeping its CPU scheduling");
            return;
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the niceness: keeping the CPU scheduling");
            return;
        }
    }
    // For the normal policies the library also sets the niceness: 0, as it was.
    match set_thread_priority_and_policy(
        thread_native_id(),
        ThreadPriority::Os(ThreadPriorityOsValue::default()),
        ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Batch),
    ) {
        Ok(()) => tracing::debug!("threads are scheduled SCHED_BATCH"),
        Err(e) => tracing::warn!(error = ?e, "cannot schedule threads SCHED_BATCH"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy_of_a_thread_started_after(policy: CpuScheduling) -> ThreadSchedulePolicy {
        std::thread::spawn(move || {
            apply(policy);
            std::thread::spawn(|| thread_priority::thread_schedule_policy().unwrap())
                .join()
                .unwrap()
        })
        .join()
        .unwrap()
    }

    #[test]
    fn batch_is_inherited_by_the_threads_started_afterwards() {
        if rustix::process::getpriority_process(None).unwrap() != 0 {
            return; // the test runner itself was started with a niceness: apply keeps it
        }
        assert_eq!(
            policy_of_a_thread_started_after(CpuScheduling::Batch),
            ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Batch)
        );
        // Normal leaves the policy as it was.
        assert_eq!(
            policy_of_a_thread_started_after(CpuScheduling::Normal),
            thread_priority::thread_schedule_policy().unwrap()
        );
    }
}
