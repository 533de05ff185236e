//! Tokens in force, kept in memory by their hash so that authenticating a
//! request (an agent's heartbeat among thousands per second) is a map
//! lookup, not a read of every token. Reread at most a second after the
//! last read (another instance's changes reach this one within that), and
//! changed at once by a token change made in this process (the cache hears
//! the executor's appends, and the admin use cases note their own).
//!
//! The lookup is by the SHA-256 of the presented token: its time tells an
//! attacker nothing usable about a stored hash's preimage.

use crate::StoreError;
use crate::executor::{AppendedEvent, Subscriber};
use crate::ports::Database;
use crate::records::TokenRecord;
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use switchboard_domain::events::DomainEvent;
use switchboard_domain::ids::{StreamId, StreamKind};
use switchboard_domain::token::TokenEvent;

/// How long a read of the tokens is used before the log is asked whether
/// any token changed since.
pub const TOKEN_CACHE_TTL: Duration = Duration::from_secs(1);

/// How far before the position of the last read token changes are looked
/// for again (PostgreSQL may commit appends out of position order).
const POSITION_OVERLAP: i64 = 256;

/// The tokens are read in full at least this often (a change committed
/// below a position already seen is picked up by then).
const FULL_READ_EVERY: Duration = Duration::from_secs(10);

/// A lookup waits for the reread rather than answer from tokens older
/// than this.
const STALE_LIMIT: Duration = Duration::from_secs(5);

/// The tokens read, by hash and by name.
#[derive(Debug, Default)]
struct Tokens {
    read_at: Option<Instant>,
    /// When they were last read in full.
    full_at: Option<Instant>,
    /// The log's position when they were read.
    position: i64,
    by_hash: HashMap<String, TokenRecord>,
    hash_of: HashMap<String, String>,
}

impl Tokens {
    fn of(records: Vec<TokenRecord>, read_at: Instant, position: i64) -> Self {
        let mut tokens = Tokens {
            read_at: Some(read_at),
            full_at: Some(read_at),
            position,
            ..Tokens::default()
        };
        for record in records {
            tokens.insert(record);
        }
        tokens
    }

    fn insert(&mut self, record: TokenRecord) {
        self.remove(&record.name.clone());
        self.hash_of
            .insert(record.name.clone(), record.hash.clone());
        self.by_hash.insert(record.hash.clone(), record);
    }

    fn remove(&mut self, name: &str) {
        if let Some(hash) = self.hash_of.remove(name) {
            self.by_hash.remove(&hash);
        }
    }
}

/// The tokens in force, cached.
#[derive(Debug, Default)]
pub struct TokenCache {
    tokens: Mutex<Tokens>,
    /// Held by the one lookup that rereads the tokens; the others use the
    /// tokens read before meanwhile.
    reloading: tokio::sync::Mutex<()>,
    /// Bumped by every change: a read begun before one is not kept.
    generation: AtomicU64,
}

/// What a lookup found in memory.
enum Cached {
    /// Read within the TTL: this is the answer.
    Fresh(Option<TokenRecord>),
    /// Read longer ago: the answer unless this lookup rereads.
    Stale(Option<TokenRecord>),
    /// Never read, or forgotten.
    Missing,
}

impl TokenCache {
    fn cached(&self, hash: &str) -> Cached {
        let tokens = self.tokens.lock().expect("token cache");
        match tokens.read_at {
            Some(at) if at.elapsed() < TOKEN_CACHE_TTL => {
                Cached::Fresh(tokens.by_hash.get(hash).cloned())
            }
            Some(at) if at.elapsed() < STALE_LIMIT => {
                Cached::Stale(tokens.by_hash.get(hash).cloned())
            }
            Some(_) => Cached::Missing,
            None => Cached::Missing,
        }
    }

    /// The token whose SHA-256 is `hash`, if it is in force.
    pub async fn find(
        &self,
        store: &dyn Database,
        hash: &str,
    ) -> Result<Option<TokenRecord>, StoreError> {
        match self.cached(hash) {
            Cached::Fresh(found) => Ok(found),
            Cached::Stale(found) => match self.reloading.try_lock() {
                // One lookup rereads; the others go on with what was read.
                Ok(_guard) => self.reload(store, hash).await,
                Err(_) => Ok(found),
            },
            Cached::Missing => {
                let _guard = self.reloading.lock().await;
                match self.cached(hash) {
                    Cached::Fresh(found) => Ok(found),
                    _ => self.reload(store, hash).await,
                }
            }
        }
    }

    /// Rereads the tokens if any changed in the log since they were read
    /// (else only marks them fresh), keeps them (unless changed meanwhile)
    /// and answers for `hash`.
    async fn reload(
        &self,
        store: &dyn Database,
        hash: &str,
    ) -> Result<Option<TokenRecord>, StoreError> {
        let read_at = Instant::now();
        let generation = self.generation.load(Ordering::Acquire);
        let (seen, was_read) = {
            let tokens = self.tokens.lock().expect("token cache");
            let recent = tokens
                .full_at
                .is_some_and(|at| at.elapsed() < FULL_READ_EVERY);
            (tokens.position, recent)
        };
        let position = store.last_position().await?;
        if was_read
            && (position == seen
                || store
                    .streams_changed_after((seen - POSITION_OVERLAP).max(0), StreamKind::Token)
                    .await?
                    .is_empty())
        {
            let mut tokens = self.tokens.lock().expect("token cache");
            if self.generation.load(Ordering::Acquire) == generation {
                tokens.read_at = Some(read_at);
                tokens.position = position;
            }
            return Ok(tokens.by_hash.get(hash).cloned());
        }
        let read = Tokens::of(store.tokens().await?, read_at, position);
        let found = read.by_hash.get(hash).cloned();
        let mut tokens = self.tokens.lock().expect("token cache");
        // A change while reading leaves the next lookup to read again.
        if self.generation.load(Ordering::Acquire) == generation {
            *tokens = read;
        }
        Ok(found)
    }

    /// Forgets the tokens read: the next lookup reads them again.
    pub fn invalidate(&self) {
        let mut tokens = self.tokens.lock().expect("token cache");
        self.generation.fetch_add(1, Ordering::AcqRel);
        *tokens = Tokens::default();
    }

    /// Applies token changes made here to the tokens read (applying one
    /// twice, by this and by the bus, changes nothing more).
    pub fn note_all(&self, name: &str, events: &[TokenEvent]) {
        let mut tokens = self.tokens.lock().expect("token cache");
        // A read begun before these changes must not replace them.
        self.generation.fetch_add(1, Ordering::AcqRel);
        if tokens.read_at.is_none() {
            return;
        }
        for event in events {
            match event {
                TokenEvent::TokenCreated {
                    scope,
                    hash,
                    server,
                    ..
                } => tokens.insert(TokenRecord {
                    name: name.to_owned(),
                    scope: *scope,
                    hash: hash.clone(),
                    created_at: chrono::Utc::now(),
                    server: *server,
                }),
                TokenEvent::TokenBound { server } => {
                    let hash = tokens.hash_of.get(name).cloned();
                    match hash.and_then(|hash| tokens.by_hash.get_mut(&hash)) {
                        Some(token) => token.server = Some(*server),
                        None => {
                            // Not read here yet: read it all again.
                            *tokens = Tokens::default();
                            return;
                        }
                    }
                }
                TokenEvent::TokenRevoked => tokens.remove(name),
            }
        }
    }
}

impl Subscriber for TokenCache {
    fn on_appended(&self, events: &[AppendedEvent]) {
        for appended in events {
            if let (StreamId::Token(name), DomainEvent::Token(event)) =
                (&appended.stream, &appended.event)
            {
                self.note_all(name, std::slice::from_ref(event));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::executor::CommandExecutor;
    use crate::memory::InMemoryStore;
    use std::sync::Arc;
    use switchboard_domain::events::EventMetadata;
    use switchboard_domain::token::{Token, TokenCommand, TokenScope, hash_token, token_stream};

    async fn create(executor: &CommandExecutor, name: &str) -> Vec<TokenEvent> {
        executor
            .execute::<Token>(
                &token_stream(name),
                &TokenCommand::Create {
                    name: name.into(),
                    scope: TokenScope::Read,
                    hash: hash_token(name),
                    server: None,
                },
                &EventMetadata::actor("test"),
            )
            .await
            .unwrap()
            .events
    }

    #[tokio::test]
    async fn changes_made_here_count_at_once_without_rereading() {
        let store = Arc::new(InMemoryStore::new());
        let executor = CommandExecutor::new(store.clone(), Default::default());
        let cache = TokenCache::default();
        create(&executor, "a").await;
        assert!(
            cache
                .find(store.as_ref(), &hash_token("a"))
                .await
                .unwrap()
                .is_some()
        );
        // Created elsewhere: not seen until the cache is reread...
        create(&executor, "b").await;
        assert!(
            cache
                .find(store.as_ref(), &hash_token("b"))
                .await
                .unwrap()
                .is_none()
        );
        // ...created here: seen at once.
        let events = create(&executor, "c").await;
        cache.note_all("c", &events);
        assert!(
            cache
                .find(store.as_ref(), &hash_token("c"))
                .await
                .unwrap()
                .is_some()
        );
        let revoked = executor
            .execute::<Token>(
                &token_stream("a"),
                &TokenCommand::Revoke,
                &EventMetadata::actor("t"),
            )
            .await
            .unwrap()
            .events;
        cache.note_all("a", &revoked);
        assert!(
            cache
                .find(store.as_ref(), &hash_token("a"))
                .await
                .unwrap()
                .is_none()
        );
        cache.invalidate();
        assert!(
            cache
                .find(store.as_ref(), &hash_token("b"))
                .await
                .unwrap()
                .is_some()
        );
    }
}
