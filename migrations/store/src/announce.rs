//! Announcing changes to other instances: PostgreSQL `NOTIFY` on one
//! channel, sent right after the transaction that made the change commits.
//!
//! Not inside that transaction: a transaction that notifies holds
//! PostgreSQL's one notification-queue lock from its commit until the
//! commit is on disk, so every announcing commit would wait for the one
//! before it and concurrent appends could never share a WAL flush. Sent
//! after the commit instead, on its own, and shared: announcements asked
//! for while one is on its way are all made by the next, so a burst of
//! appends sends a few NOTIFYs, not one each. A process that stops between
//! its commit and the announcement loses it; listeners keep a periodic
//! refresh for that (and for a lost connection) in any case.

use sea_orm::{ConnectionTrait, DbErr};
use std::sync::atomic::{AtomicU64, Ordering};

/// The PostgreSQL channel on which appends and sample writes are announced,
/// so other instances refresh their views at once.
pub const CHANGE_CHANNEL: &str = "switchboard_changes";

/// What changed, as the notification's payload says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Change {
    /// Events were appended.
    Events,
    /// Server samples were written.
    Samples,
}

impl Change {
    fn payload(self) -> &'static str {
        match self {
            Change::Events => "events",
            Change::Samples => "samples",
        }
    }
}

/// Sends the announcements of one store, one NOTIFY for all those asked for
/// while the previous one was being sent (per kind of change).
#[derive(Debug, Default)]
pub(crate) struct Announcer {
    events: Coalesced,
    samples: Coalesced,
}

/// One kind of announcement: tickets asked for and covered.
#[derive(Debug, Default)]
struct Coalesced {
    /// Announcements asked for so far.
    asked: AtomicU64,
    /// Every ticket up to this one was covered by a NOTIFY sent after it
    /// was asked for.
    covered: AtomicU64,
    /// One NOTIFY of this kind at a time.
    sending: tokio::sync::Mutex<()>,
}

impl Announcer {
    /// Tells other instances (PostgreSQL LISTEN) that `what` changed; called
    /// after the change committed. Returns once a NOTIFY sent after this
    /// call began has been delivered to PostgreSQL.
    pub(crate) async fn announce<C: ConnectionTrait>(
        &self,
        db: &C,
        what: Change,
    ) -> Result<(), DbErr> {
        let coalesced = match what {
            Change::Events => &self.events,
            Change::Samples => &self.samples,
        };
        coalesced
            .send_once_for_all(|| async {
                db.execute_unprepared(&notify_sql(what)).await.map(|_| ())
            })
            .await
    }
}

/// The announcement as one statement whose transaction commits without
/// waiting for its flush: a NOTIFY takes a transaction id, so each one was
/// a commit waited on to reach the disk, about one every other create at
/// full load (issue 22). The notification is delivered at the commit as
/// before; nothing it says must survive a crash (listeners refresh in any
/// case).
fn notify_sql(what: Change) -> String {
    format!(
        "SELECT set_config('synchronous_commit', 'off', true), pg_notify('{CHANGE_CHANNEL}', '{}')",
        what.payload()
    )
}

impl Coalesced {
    /// Runs `send` unless a run that began after this call began has
    /// succeeded meanwhile; one run at a time.
    async fn send_once_for_all<F, Fut, E>(&self, send: F) -> Result<(), E>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<(), E>>,
    {
        let ticket = self.asked.fetch_add(1, Ordering::AcqRel) + 1;
        let _sending = self.sending.lock().await;
        if self.covered.load(Ordering::Acquire) >= ticket {
            return Ok(());
        }
        // Every ticket asked for by now belongs to a change committed
        // before this run starts: it covers them all.
        let upto = self.asked.load(Ordering::Acquire);
        send().await?;
        self.covered.fetch_max(upto, Ordering::AcqRel);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::AtomicUsize;

    #[tokio::test]
    async fn an_announcement_alone_is_sent_every_time() {
        let coalesced = Coalesced::default();
        let sent = AtomicUsize::new(0);
        for _ in 0..3 {
            coalesced
                .send_once_for_all(|| async {
                    sent.fetch_add(1, Ordering::SeqCst);
                    Ok::<_, ()>(())
                })
                .await
                .unwrap();
        }
        assert_eq!(sent.load(Ordering::SeqCst), 3);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn announcements_asked_for_while_one_is_sent_share_the_next() {
        let coalesced = Arc::new(Coalesced::default());
        let sent = Arc::new(AtomicUsize::new(0));
        // Hold the lock, as a NOTIFY on its way does: the 32 announcements
        // asked for meanwhile wait, and the first of them to send covers
        // them all.
        let held = coalesced.sending.lock().await;
        let mut waiting = Vec::new();
        for _ in 0..32 {
            let (coalesced, sent) = (coalesced.clone(), sent.clone());
            waiting.push(tokio::spawn(async move {
                coalesced
                    .send_once_for_all(|| async {
                        sent.fetch_add(1, Ordering::SeqCst);
                        Ok::<_, ()>(())
                    })
                    .await
            }));
        }
        while coalesced.asked.load(Ordering::Acquire) < 32 {
            tokio::task::yield_now().await;
        }
        drop(held);
        for task in waiting {
            task.await.unwrap().unwrap();
        }
        assert_eq!(sent.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_failed_send_covers_nobody() {
        let coalesced = Coalesced::default();
        let failed = coalesced
            .send_once_for_all(|| async { Err::<(), _>("down") })
            .await;
        assert_eq!(failed, Err("down"));
        let sent = AtomicUsize::new(0);
        coalesced
            .send_once_for_all(|| async {
                sent.fetch_add(1, Ordering::SeqCst);
                Ok::<_, ()>(())
            })
            .await
            .unwrap();
        assert_eq!(sent.load(Ordering::SeqCst), 1);
    }
}
