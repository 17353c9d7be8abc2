//! A core's count of its connection tasks (handshakes, API connections, tend tasks), which
//! shutdown waits for within its grace period.
//!
//! Why not glommio's `sync::Gate`, which does this job: its `close()` has to be awaited to the
//! end. Dropped before the last pass is released, as a wait cut short by the grace period is,
//! it leaves the gate closing with no one listening, and the drop of the last pass then panics
//! (glommio 0.9.0 unwraps the send to the gone waiter; it aborts the process when that drop
//! runs while the executor is torn down). A closing gate also refuses new passes, so a tend
//! task that a handshake hands on during shutdown would not be waited for. This counter has
//! neither edge: a guard can be taken at any time, and the waiter may give up at any time.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

/// The connection tasks of one core.
#[derive(Debug, Default)]
pub struct Tasks {
    count: Cell<usize>,
    idle_waiter: RefCell<Option<Waker>>,
}

impl Tasks {
    /// Counts a task until the guard drops.
    pub fn enter(self: &Rc<Self>) -> TaskGuard {
        self.count.set(self.count.get() + 1);
        TaskGuard {
            tasks: self.clone(),
        }
    }

    /// Resolves when no task is left.
    pub fn idle(&self) -> Idle<'_> {
        Idle { tasks: self }
    }
}

/// Keeps a task counted.
#[derive(Debug)]
pub struct TaskGuard {
    tasks: Rc<Tasks>,
}

impl Drop for TaskGuard {
    fn drop(&mut self) {
        let left = self.tasks.count.get() - 1;
        self.tasks.count.set(left);
        if left == 0 {
            if let Some(w) = self.tasks.idle_waiter.borrow_mut().take() {
                w.wake();
            }
        }
    }
}

/// Future of [`Tasks::idle`].
#[derive(Debug)]
pub struct Idle<'a> {
    tasks: &'a Tasks,
}

impl Future for Idle<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.tasks.count.get() == 0 {
            Poll::Ready(())
        } else {
            *self.tasks.idle_waiter.borrow_mut() = Some(cx.waker().clone());
            Poll::Pending
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_resolves_once_the_last_guard_drops() {
        let tasks = Rc::new(Tasks::default());
        let mut cx = Context::from_waker(Waker::noop());
        let (a, b) = (tasks.enter(), tasks.enter());
        let mut idle = tasks.idle();
        assert!(Pin::new(&mut idle).poll(&mut cx).is_pending());
        drop(a);
        assert!(Pin::new(&mut idle).poll(&mut cx).is_pending());
        drop(b);
        assert!(Pin::new(&mut idle).poll(&mut cx).is_ready());
    }
}
