//! Requests sent to the service and not yet answered, matched to their answers by id.

use std::collections::HashMap;

use tokio::sync::oneshot;

use super::Started;
use crate::error::{Error, Result};
use crate::protocol::Id;

/// Who waits for the answer to a request.
pub(super) enum Pending {
    /// An `execute`: the caller of `ConnHandle::execute`.
    Execute {
        reply: oneshot::Sender<Result<Started>>,
    },
    /// A control or an `input`: the caller of a `Controller` method.
    Control { reply: oneshot::Sender<Result<()>> },
    /// A CANCEL the actor sent on its own (timeout, drop); its answer does not matter.
    Internal,
}

impl Pending {
    /// Answer with `err`: the request will never be answered.
    pub(super) fn fail(self, err: Error) {
        match self {
            Pending::Execute { reply } => {
                let _ = reply.send(Err(err));
            }
            Pending::Control { reply } => {
                let _ = reply.send(Err(err));
            }
            Pending::Internal => {}
        }
    }
}

/// The requests waiting for an answer, by id; ids are numbers counted from 1.
pub(super) struct Requests {
    next_id: i64,
    waiting: HashMap<i64, Pending>,
}

impl Requests {
    pub(super) fn new() -> Self {
        Requests {
            next_id: 1,
            waiting: HashMap::new(),
        }
    }

    /// Register a request about to be sent; its id.
    pub(super) fn add(&mut self, pending: Pending) -> Id {
        let id = self.next_id;
        self.next_id += 1;
        self.waiting.insert(id, pending);
        Id::Number(id)
    }

    /// The request an answer with `id` is for, if any is waiting.
    pub(super) fn take(&mut self, id: Option<&Id>) -> Option<Pending> {
        match id {
            Some(Id::Number(n)) => self.waiting.remove(n),
            _ => None,
        }
    }

    /// Fail every waiting request with the error `err` makes. Returns whether an `execute`
    /// was among them.
    pub(super) fn fail_all(&mut self, err: impl Fn() -> Error) -> bool {
        let mut execute = false;
        for (_, p) in self.waiting.drain() {
            execute |= matches!(p, Pending::Execute { .. });
            p.fail(err());
        }
        execute
    }
}
