//! Frames that collect, on the current thread, what code deep in a call wants done later.
//!
//! A tenant's write queue runs requests with their commits and their effects held back
//! (`store::defer_commits`, `services::defer_effects`): the repositories and services record
//! what they would have done into the frame open on their thread, and the queue does it once
//! the batch is committed. Outside a frame, [`push`] hands the item back for doing at once.

use std::cell::RefCell;
use std::thread::LocalKey;

/// A thread-local frame slot: `Some` while a frame is open on the thread.
pub type Slot<I> = RefCell<Option<Vec<I>>>;

/// Runs `f` with a frame open in `slot`; returns `f`'s value and what was pushed meanwhile.
/// Frames nest: the enclosing frame is restored afterwards, also when `f` unwinds.
pub fn collect<I: 'static, T>(
    slot: &'static LocalKey<Slot<I>>,
    f: impl FnOnce() -> T,
) -> (T, Vec<I>) {
    struct Restore<I: 'static> {
        slot: &'static LocalKey<Slot<I>>,
        outer: Option<Vec<I>>,
    }
    impl<I: 'static> Drop for Restore<I> {
        fn drop(&mut self) {
            let outer = self.outer.take();
            self.slot.with(|s| *s.borrow_mut() = outer);
        }
    }
    let restore = Restore {
        slot,
        outer: slot.with(|s| s.borrow_mut().replace(Vec::new())),
    };
    let value = f();
    let items = slot.with(|s| s.borrow_mut().take()).unwrap_or_default();
    drop(restore);
    (value, items)
}

/// Adds `item` to the frame open in `slot`; without one, hands it back.
pub fn push<I: 'static>(slot: &'static LocalKey<Slot<I>>, item: I) -> Result<(), I> {
    slot.with(|s| match s.borrow_mut().as_mut() {
        Some(items) => {
            items.push(item);
            Ok(())
        }
        None => Err(item),
    })
}

/// Whether a frame is open in `slot`.
pub fn is_open<I: 'static>(slot: &'static LocalKey<Slot<I>>) -> bool {
    slot.with(|s| s.borrow().is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    thread_local! {
        static SLOT: Slot<u32> = const { RefCell::new(None) };
    }

    #[test]
    fn frames_collect_nest_and_close_also_when_unwinding() {
        assert_eq!(push(&SLOT, 1), Err(1), "no frame open");
        let ((), outer) = collect(&SLOT, || {
            push(&SLOT, 2).unwrap();
            let ((), inner) = collect(&SLOT, || push(&SLOT, 3).unwrap());
            assert_eq!(inner, [3]);
            push(&SLOT, 4).unwrap();
        });
        assert_eq!(outer, [2, 4]);
        assert!(!is_open(&SLOT));

        let unwound = std::panic::catch_unwind(|| collect(&SLOT, || panic!("in a frame")));
        assert!(unwound.is_err());
        assert!(!is_open(&SLOT), "a frame outlived its closure");
    }
}
