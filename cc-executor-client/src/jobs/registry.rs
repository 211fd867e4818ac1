//! The jobs a registry holds, by id, and the eviction of finished ones.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use super::job::Job;
use super::{JobId, JobsConfig};

/// Jobs by id; ids count from 1.
#[derive(Debug, Default)]
pub(super) struct Registry {
    next_id: u64,
    jobs: BTreeMap<JobId, Arc<Job>>,
}

impl Registry {
    /// The id the next job will get.
    pub(super) fn next_id(&mut self) -> JobId {
        self.next_id += 1;
        JobId(self.next_id)
    }

    pub(super) fn insert(&mut self, id: JobId, job: Arc<Job>) {
        self.jobs.insert(id, job);
    }

    pub(super) fn get(&self, id: JobId) -> Option<Arc<Job>> {
        self.jobs.get(&id).cloned()
    }

    pub(super) fn remove(&mut self, id: JobId) {
        self.jobs.remove(&id);
    }

    /// Every job, oldest first.
    pub(super) fn all(&self) -> Vec<Arc<Job>> {
        self.jobs.values().cloned().collect()
    }

    /// Evict finished jobs past `keep_finished`, then the oldest finished past `max_finished`;
    /// the jobs evicted.
    pub(super) fn evict(&mut self, cfg: &JobsConfig) -> Vec<Arc<Job>> {
        let now = Instant::now();
        let (mut finished, mut gone) = (Vec::<(Instant, JobId)>::new(), Vec::new());
        self.jobs.retain(|id, job| match job.finished_at() {
            Some(at) if now.duration_since(at) >= cfg.keep_finished => {
                gone.push(job.clone());
                false
            }
            Some(at) => {
                finished.push((at, *id));
                true
            }
            None => true,
        });
        if finished.len() > cfg.max_finished {
            finished.sort();
            for (_, id) in &finished[..finished.len() - cfg.max_finished] {
                gone.extend(self.jobs.remove(id));
            }
        }
        gone
    }
}
