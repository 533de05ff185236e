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
use switchboard_domain::events::DomainEvent;
use switchboard_domain::ids::StreamId;
use switchboard_domain::token::TokenEvent;

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

impl TokenCache {
    /// Applies token changes made here to the tokens read (applying one
    /// twice, by this and by the bus, changes nothing more).
    pub fn note_all(&self, name: &str, events: &[TokenEvent]) {
        for event in events {
            if !self.apply(name, event) {
                self.invalidate();
                return;
            }
        }
    }

    /// Applies a token change appended in this process to the tokens read
    /// (so creating many tokens does not make every lookup reread them);
    /// `false` when it cannot be applied here.
    fn apply(&self, name: &str, event: &TokenEvent) -> bool {
        let mut loaded = self.loaded.lock().expect("token cache");
        // A read begun before this change must not replace it.
        self.generation.fetch_add(1, Ordering::AcqRel);
        let Some((_, tokens)) = loaded.as_mut() else {
            return true;
        };
        let tokens = Arc::make_mut(tokens);
        match event {
            TokenEvent::TokenCreated {
                scope,
                hash,
                server,
                ..
            } => {
                tokens.retain(|_, token| token.name != name);
                tokens.insert(
                    hash.clone(),
                    TokenRecord {
                        name: name.to_owned(),
                        scope: *scope,
                        hash: hash.clone(),
                        created_at: chrono::Utc::now(),
                        server: *server,
                    },
                );
                true
            }
            TokenEvent::TokenBound { server } => {
                match tokens.values_mut().find(|token| token.name == name) {
                    Some(token) => {
                        token.server = Some(*server);
                        true
                    }
                    None => false,
                }
            }
            TokenEvent::TokenRevoked => {
                tokens.retain(|_, token| token.name != name);
                true
            }
        }
    }
}

impl Subscriber for TokenCache {
    fn on_appended(&self, events: &[AppendedEvent]) {
        for appended in events {
            let (StreamId::Token(name), DomainEvent::Token(event)) =
                (&appended.stream, &appended.event)
            else {
                continue;
            };
            if !self.apply(name, event) {
                self.invalidate();
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::executor::CommandExecutor;
    use crate::memory::InMemoryStore;
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
        assert!(cache.find(store.as_ref(), &hash_token("a")).await.unwrap().is_some());
        // Created elsewhere: not seen until the cache is reread...
        create(&executor, "b").await;
        assert!(cache.find(store.as_ref(), &hash_token("b")).await.unwrap().is_none());
        // ...created here: seen at once.
        let events = create(&executor, "c").await;
        cache.note_all("c", &events);
        assert!(cache.find(store.as_ref(), &hash_token("c")).await.unwrap().is_some());
        let revoked = executor
            .execute::<Token>(&token_stream("a"), &TokenCommand::Revoke, &EventMetadata::actor("t"))
            .await
            .unwrap()
            .events;
        cache.note_all("a", &revoked);
        assert!(cache.find(store.as_ref(), &hash_token("a")).await.unwrap().is_none());
        cache.invalidate();
        assert!(cache.find(store.as_ref(), &hash_token("b")).await.unwrap().is_some());
    }
}
