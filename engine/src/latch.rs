//! A one-way, single-threaded signal: tasks of one core wait until it is set (shutdown).
//!
//! Waiters sit in a slot table and free their slot when dropped, so thousands of connections
//! waiting on it cost O(1) each and nothing accumulates.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

/// Set once; every waiter then resolves.
#[derive(Default)]
pub struct Latch {
    set: Cell<bool>,
    slots: RefCell<Vec<Option<Waker>>>,
    free: RefCell<Vec<usize>>,
}

impl Latch {
    /// Sets the latch and wakes every waiter.
    pub fn set(&self) {
        self.set.set(true);
        let wakers: Vec<Waker> = self
            .slots
            .borrow_mut()
            .iter_mut()
            .filter_map(Option::take)
            .collect();
        for w in wakers {
            w.wake();
        }
    }

    /// True once set.
    pub fn is_set(&self) -> bool {
        self.set.get()
    }

    /// Resolves once the latch is set.
    pub fn wait(&self) -> Wait<'_> {
        Wait {
            latch: self,
            slot: None,
        }
    }
}

/// Future of [`Latch::wait`].
pub struct Wait<'a> {
    latch: &'a Latch,
    slot: Option<usize>,
}

impl Future for Wait<'_> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.latch.set.get() {
            return Poll::Ready(());
        }
        let mut slots = self.latch.slots.borrow_mut();
        match self.slot {
            Some(i) => slots[i] = Some(cx.waker().clone()),
            None => {
                let i = match self.latch.free.borrow_mut().pop() {
                    Some(i) => {
                        slots[i] = Some(cx.waker().clone());
                        i
                    }
                    None => {
                        slots.push(Some(cx.waker().clone()));
                        slots.len() - 1
                    }
                };
                drop(slots);
                self.slot = Some(i);
            }
        }
        Poll::Pending
    }
}

impl Drop for Wait<'_> {
    fn drop(&mut self) {
        if let Some(i) = self.slot {
            if let Some(slot) = self.latch.slots.borrow_mut().get_mut(i) {
                *slot = None;
            }
            self.latch.free.borrow_mut().push(i);
        }
    }
}
