//! Each stream's state at its last archived event: what the executor
//! starts from once the stream's older events are gone.

use switchboard_app::executor::StreamAggregate;
use switchboard_domain::aggregate::Aggregate;
use switchboard_domain::events::DomainEvent;
use switchboard_domain::hook::Hook;
use switchboard_domain::ids::StreamId;
use switchboard_domain::meeting::Meeting;
use switchboard_domain::recording::Recording;
use switchboard_domain::server::Server;
use switchboard_domain::tenant::Tenant;
use switchboard_domain::token::Token;

/// One stream's aggregate, of its kind.
#[derive(Debug, Clone)]
pub(crate) enum Folded {
    Server(Server),
    Meeting(Meeting),
    Token(Token),
    Tenant(Tenant),
    Recording(Recording),
    Hook(Hook),
}

impl Folded {
    /// The state of `stream` before its first event.
    pub(crate) fn initial(stream: &StreamId) -> Self {
        match stream {
            StreamId::Server(_) => Self::Server(Server::initial(stream)),
            StreamId::Meeting(..) => Self::Meeting(Meeting::initial(stream)),
            StreamId::Token(_) => Self::Token(Token::initial(stream)),
            StreamId::Tenant(_) => Self::Tenant(Tenant::initial(stream)),
            StreamId::Recording(_) => Self::Recording(Recording::initial(stream)),
            StreamId::Hook(_) => Self::Hook(Hook::initial(stream)),
        }
    }

    /// A state kept as JSON by [`to_json`](Self::to_json).
    pub(crate) fn from_json(stream: &StreamId, json: &str) -> Result<Self, serde_json::Error> {
        Ok(match stream {
            StreamId::Server(_) => Self::Server(serde_json::from_str(json)?),
            StreamId::Meeting(..) => Self::Meeting(serde_json::from_str(json)?),
            StreamId::Token(_) => Self::Token(serde_json::from_str(json)?),
            StreamId::Tenant(_) => Self::Tenant(serde_json::from_str(json)?),
            StreamId::Recording(_) => Self::Recording(serde_json::from_str(json)?),
            StreamId::Hook(_) => Self::Hook(serde_json::from_str(json)?),
        })
    }

    /// The state as JSON (what the executor reads back).
    pub(crate) fn to_json(&self) -> Result<String, serde_json::Error> {
        match self {
            Self::Server(state) => serde_json::to_string(state),
            Self::Meeting(state) => serde_json::to_string(state),
            Self::Token(state) => serde_json::to_string(state),
            Self::Tenant(state) => serde_json::to_string(state),
            Self::Recording(state) => serde_json::to_string(state),
            Self::Hook(state) => serde_json::to_string(state),
        }
    }

    /// Folds one event of the stream (one of another kind changes nothing:
    /// the log's events are checked against their stream when written).
    pub(crate) fn evolve(&mut self, event: &DomainEvent) {
        match (self, event) {
            (Self::Server(state), DomainEvent::Server(event)) => state.evolve(event),
            (Self::Meeting(state), DomainEvent::Meeting(event)) => state.evolve(event),
            (Self::Token(state), DomainEvent::Token(event)) => state.evolve(event),
            (Self::Tenant(state), DomainEvent::Tenant(event)) => state.evolve(event),
            (Self::Recording(state), DomainEvent::Recording(event)) => state.evolve(event),
            (Self::Hook(state), DomainEvent::Hook(event)) => state.evolve(event),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_domain::server::ServerEvent;

    #[test]
    fn a_folded_stream_reads_back_as_it_was() {
        let stream: StreamId = "server:5f0c7a52-6e43-4c53-9b0e-9b7c39a5a1d1"
            .parse()
            .unwrap();
        let mut folded = Folded::initial(&stream);
        folded.evolve(&DomainEvent::Server(ServerEvent::ServerCordoned));
        folded.evolve(&DomainEvent::Server(ServerEvent::ServerWentOffline));
        let json = folded.to_json().unwrap();
        let Folded::Server(server) = Folded::from_json(&stream, &json).unwrap() else {
            panic!("a server stream folds a server");
        };
        assert_eq!(server.state.as_str(), "cordoned");
        assert!(!server.online);
    }
}
