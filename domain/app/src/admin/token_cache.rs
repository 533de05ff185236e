//! Tokens in force, kept in memory by their hash so that authenticating a
//! request (an agent's heartbeat among thousands per second) is a map
//! lookup, not a read of every token. Reread at most a second after the
//! last read (another instance's changes reach this one within that), and
//! at once after a token change appended in this process (the cache hears
//! the executor's appends).
//!
//! The lookup is by the SHA-256 of the presented token: its time tells an
//! attacker nothing usable about a stored hash's preimage.

use crate::StoreError;
use crate::executor::{AppendedEvent, Subscriber};
use crate::ports::Database;
use crate::records::TokenRecord;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use switchboard_domain::ids::StreamId;

/// How long a read of the tokens is used.
pub const TOKEN_CACHE_TTL: Duration = Duration::from_secs(1);

/// Tokens by hash, with when they were read.
type Loaded = (Instant, Arc<HashMap<String, TokenRecord>>);

/// The tokens in force, cached.
#[derive(Debug, Default)]
pub struct TokenCache {
    loaded: Mutex<Option<Loaded>>,
    /// Held by the one lookup that rereads the tokens; the others use the
    /// tokens read before meanwhile.
    reloading: tokio::sync::Mutex<()>,
    /// Bumped by every invalidation: a read begun before one is not kept.
    generation: AtomicU64,
}

impl TokenCache {
    /// The token whose SHA-256 is `hash`, if it is in force.
    pub async fn find(
        &self,
        store: &dyn Database,
        hash: &str,
    ) -> Result<Option<TokenRecord>, StoreError> {
        let (fresh, stale) = {
            let loaded = self.loaded.lock().expect("token cache");
            match loaded.as_ref() {
                Some((at, tokens)) if at.elapsed() < TOKEN_CACHE_TTL => (Some(tokens.clone()), None),
                Some((_, tokens)) => (None, Some(tokens.clone())),
                None => (None, None),
            }
        };
        let tokens = match (fresh, stale) {
            (Some(tokens), _) => tokens,
            (None, stale) => {
                // One lookup rereads; the others go on with what was read
                // before (unless nothing was, or it was invalidated).
                let guard = match (self.reloading.try_lock(), &stale) {
                    (Ok(guard), _) => guard,
                    (Err(_), Some(stale)) => return Ok(stale.get(hash).cloned()),
                    (Err(_), None) => self.reloading.lock().await,
                };
                let tokens = self.reload(store).await?;
                drop(guard);
                tokens
            }
        };
        Ok(tokens.get(hash).cloned())
    }

    /// Reads the tokens and keeps them (unless invalidated meanwhile).
    async fn reload(
        &self,
        store: &dyn Database,
    ) -> Result<Arc<HashMap<String, TokenRecord>>, StoreError> {
        let read_at = Instant::now();
        let generation = self.generation.load(Ordering::Acquire);
        let tokens: Arc<HashMap<String, TokenRecord>> = Arc::new(
            store
                .tokens()
                .await?
                .into_iter()
                .map(|token| (token.hash.clone(), token))
                .collect(),
        );
        let mut loaded = self.loaded.lock().expect("token cache");
        // An invalidation while reading leaves the next call to read again.
        if self.generation.load(Ordering::Acquire) == generation {
            *loaded = Some((read_at, tokens.clone()));
        }
        Ok(tokens)
    }

    /// Forgets the tokens read: the next lookup reads them again.
    pub fn invalidate(&self) {
        let mut loaded = self.loaded.lock().expect("token cache");
        self.generation.fetch_add(1, Ordering::AcqRel);
        *loaded = None;
    }
}

impl Subscriber for TokenCache {
    fn on_appended(&self, events: &[AppendedEvent]) {
        if events
            .iter()
            .any(|event| matches!(event.stream, StreamId::Token(_)))
        {
            self.invalidate();
        }
    }
}
