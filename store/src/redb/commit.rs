//! How [`RedbStore`] commits a group of batches ([`super::group`]): all in
//! one write transaction, or, when anything in it fails, each alone.

use std::sync::Arc;

use ::redb::WriteTransaction;
use synctree_primitives::{ApplyReport, StoreError};

use super::RedbStore;
use super::apply::Pending;
use super::error::redb_error;
use super::group::{Commit, Job};

impl Commit for RedbStore {
    /// One transaction for the whole group; if it fails, nothing of it is
    /// applied and each batch is retried in a transaction of its own, so each
    /// gets its own outcome.
    fn commit_group(&self, jobs: &[Arc<Job>]) -> Vec<Result<ApplyReport, StoreError>> {
        if jobs.len() > 1
            && let Ok(reports) = self.guard.run("apply", || self.write_group(jobs))
        {
            return reports.into_iter().map(Ok).collect();
        }
        jobs.iter()
            .map(|job| {
                let alone = std::slice::from_ref(job);
                let reports = self.guard.run("apply", || self.write_group(alone))?;
                Ok(reports.into_iter().next().unwrap_or_default())
            })
            .collect()
    }
}

impl RedbStore {
    /// Merges every job's batch, in order, in one write transaction, runs
    /// their hooks, brings each context's index up to date once, and commits
    /// unless no entry changed anything.
    fn write_group(&self, jobs: &[Arc<Job>]) -> Result<Vec<ApplyReport>, StoreError> {
        let Some(first) = jobs.first() else {
            return Ok(Vec::new());
        };
        let context = Some(&first.context);
        let txn = self
            .db
            .begin_write()
            .map_err(redb_error("apply", context))?;
        let mut pending: Vec<Pending> = Vec::new();
        let mut reports = Vec::with_capacity(jobs.len());
        for job in jobs {
            reports.push(write_job(&txn, &mut pending, job)?);
        }
        for context in pending {
            context.finish(&txn)?;
        }
        if reports.iter().all(|r| r.changed == 0) {
            // Nothing won a merge: nothing to make durable, no fsync to pay.
            txn.abort().map_err(redb_error("apply", context))?;
        } else {
            txn.commit().map_err(redb_error("apply", context))?;
        }
        Ok(reports)
    }
}

/// Merges one job's batch inside `txn` into its context's [`Pending`]
/// changes (begun on the context's first batch), then runs its hook.
fn write_job(
    txn: &WriteTransaction,
    pending: &mut Vec<Pending>,
    job: &Job,
) -> Result<ApplyReport, StoreError> {
    let at = match pending.iter().position(|p| *p.context() == job.context) {
        Some(at) => at,
        None => {
            pending.push(Pending::begin(txn, &job.context)?);
            pending.len() - 1
        }
    };
    let report = pending[at].merge(txn, &job.batch)?;
    if let Some(hook) = &job.hook {
        hook()?;
    }
    Ok(report)
}
