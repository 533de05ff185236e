//! The aggregate pattern: `decide` turns a command into events against the
//! current state without changing it; `evolve` folds one event into the state.

/// A consistency boundary with its own event stream.
pub trait Aggregate: Default + Clone {
    /// What can be asked of it.
    type Command;
    /// What it records.
    type Event: Clone;
    /// Why a command was refused.
    type Error;

    /// Decides which events a command produces (possibly none: idempotent).
    fn decide(&self, command: &Self::Command) -> Result<Vec<Self::Event>, Self::Error>;

    /// Folds one event into the state. Never fails: events are facts.
    fn evolve(&mut self, event: &Self::Event);

    /// Rebuilds the state from a stream's events.
    fn fold<'a>(events: impl IntoIterator<Item = &'a Self::Event>) -> Self
    where
        Self::Event: 'a,
    {
        let mut state = Self::default();
        for event in events {
            state.evolve(event);
        }
        state
    }
}
