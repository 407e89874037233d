//! Agents at work: the providers they think with (`providers`), the platform tools they act
//! through, the prompt they are given, and the runner that drives a task's tool loop as a
//! `run_task` job, with budgets, usage and durable delegation.

pub mod dispatch;
pub mod pricing;
pub mod providers;
pub mod tools;
