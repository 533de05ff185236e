//! Server selection for new meetings: Scalelite's `meta_server-tag` rules and
//! least-load ordering.
//!
//! - no tag (or empty): untagged servers only;
//! - `tag`: servers with that tag, falling back to untagged servers;
//! - `tag!`: servers with that tag only, else `serverTagUnavailable`;
//! - `a;b` / `a;b!`: any of several tags, with the same fallback rule.

use crate::ids::ServerId;

/// What a create asked for with `meta_server-tag`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TagRequest {
    /// Acceptable tags; empty means "untagged servers".
    pub tags: Vec<String>,
    /// When true, untagged servers are no fallback.
    pub required: bool,
}

impl TagRequest {
    /// Parses a `meta_server-tag` value.
    pub fn parse(raw: Option<&str>) -> Self {
        let raw = raw.unwrap_or("").trim();
        let (list, required) = match raw.strip_suffix('!') {
            Some(list) => (list, true),
            None => (raw, false),
        };
        let tags: Vec<String> = list
            .split(';')
            .map(str::trim)
            .filter(|tag| !tag.is_empty())
            .map(str::to_owned)
            .collect();
        let required = required && !tags.is_empty();
        Self { tags, required }
    }

    /// The tags as the front-end wrote them, for error messages.
    pub fn describe(&self) -> String {
        self.tags.join(";")
    }
}

/// A server that could take a meeting, with its effective load.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    /// The server.
    pub id: ServerId,
    /// Its tag.
    pub tag: Option<String>,
    /// Load after the multiplier.
    pub load: f64,
}

/// Why no server can be chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SelectionError {
    /// A required tag had no available server.
    TagUnavailable(String),
    /// No server is available at all.
    NoServer,
}

/// Orders the available servers for a create: the best first, fallbacks after.
/// `available` must hold only enabled, online servers.
pub fn rank(
    available: &[Candidate],
    request: &TagRequest,
) -> Result<Vec<ServerId>, SelectionError> {
    let by_load = |mut list: Vec<&Candidate>| {
        list.sort_by(|a, b| a.load.total_cmp(&b.load).then(a.id.cmp(&b.id)));
        list.into_iter().map(|c| c.id).collect::<Vec<_>>()
    };
    let untagged = || by_load(available.iter().filter(|c| c.tag.is_none()).collect());
    let ranked = if request.tags.is_empty() {
        untagged()
    } else {
        let mut ranked = by_load(
            available
                .iter()
                .filter(|c| c.tag.as_ref().is_some_and(|tag| request.tags.contains(tag)))
                .collect(),
        );
        if ranked.is_empty() && request.required {
            return Err(SelectionError::TagUnavailable(request.describe()));
        }
        if !request.required {
            ranked.extend(untagged());
        }
        ranked
    };
    if ranked.is_empty() {
        Err(SelectionError::NoServer)
    } else {
        Ok(ranked)
    }
}

/// Orders the servers for a create of a tenant whose meetings require one
/// of the tags in `pool` (empty: no requirement, Scalelite's rules as in
/// [`rank`]). Within a pool every server is tagged, so `meta_server-tag`
/// composes as a preference: no tag means any pool server; `tag` prefers
/// those pool servers, falling back to the rest of the pool; `tag!` takes
/// only those.
pub fn rank_in_pool(
    available: &[Candidate],
    request: &TagRequest,
    pool: &[String],
) -> Result<Vec<ServerId>, SelectionError> {
    if pool.is_empty() {
        return rank(available, request);
    }
    let in_pool: Vec<&Candidate> = available
        .iter()
        .filter(|c| c.tag.as_ref().is_some_and(|tag| pool.contains(tag)))
        .collect();
    let by_load = |mut list: Vec<&Candidate>| {
        list.sort_by(|a, b| a.load.total_cmp(&b.load).then(a.id.cmp(&b.id)));
        list.into_iter().map(|c| c.id).collect::<Vec<_>>()
    };
    let wanted = |c: &&Candidate| c.tag.as_ref().is_some_and(|tag| request.tags.contains(tag));
    let ranked = if request.tags.is_empty() {
        by_load(in_pool)
    } else {
        let mut ranked = by_load(in_pool.iter().copied().filter(wanted).collect());
        if ranked.is_empty() && request.required {
            return Err(SelectionError::TagUnavailable(request.describe()));
        }
        if !request.required {
            ranked.extend(by_load(
                in_pool.iter().copied().filter(|c| !wanted(c)).collect(),
            ));
        }
        ranked
    };
    if ranked.is_empty() {
        Err(SelectionError::NoServer)
    } else {
        Ok(ranked)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tenant_pool_composes_with_server_tags() {
        let untagged = candidate(None, 0.0);
        let gold_busy = candidate(Some("gold"), 5.0);
        let gold_idle = candidate(Some("gold"), 1.0);
        let silver = candidate(Some("silver"), 0.5);
        let other = candidate(Some("other"), 0.1);
        let all = [
            untagged.clone(),
            gold_busy.clone(),
            gold_idle.clone(),
            silver.clone(),
            other.clone(),
        ];
        let pool = vec!["gold".to_owned(), "silver".to_owned()];
        assert_eq!(
            rank_in_pool(&all, &TagRequest::default(), &pool).unwrap(),
            vec![silver.id, gold_idle.id, gold_busy.id],
            "no tag: any pool server by load, never outside the pool"
        );
        assert_eq!(
            rank_in_pool(&all, &TagRequest::parse(Some("gold")), &pool).unwrap(),
            vec![gold_idle.id, gold_busy.id, silver.id],
            "a tag is preferred, the rest of the pool follows"
        );
        assert_eq!(
            rank_in_pool(&all, &TagRequest::parse(Some("gold!")), &pool).unwrap(),
            vec![gold_idle.id, gold_busy.id]
        );
        assert_eq!(
            rank_in_pool(&all, &TagRequest::parse(Some("other!")), &pool),
            Err(SelectionError::TagUnavailable("other".into())),
            "a tag outside the pool is not available to the tenant"
        );
        assert_eq!(
            rank_in_pool(
                std::slice::from_ref(&untagged),
                &TagRequest::default(),
                &pool
            ),
            Err(SelectionError::NoServer)
        );
        assert_eq!(
            rank_in_pool(&all, &TagRequest::default(), &[]).unwrap(),
            vec![untagged.id],
            "without a pool, Scalelite's rules"
        );
    }

    fn candidate(tag: Option<&str>, load: f64) -> Candidate {
        Candidate {
            id: ServerId::new(),
            tag: tag.map(str::to_owned),
            load,
        }
    }

    #[test]
    fn parses_tag_requests() {
        assert_eq!(TagRequest::parse(None), TagRequest::default());
        assert_eq!(TagRequest::parse(Some("!")), TagRequest::default());
        assert_eq!(
            TagRequest::parse(Some("a;b!")),
            TagRequest {
                tags: vec!["a".into(), "b".into()],
                required: true
            }
        );
        assert!(!TagRequest::parse(Some("gpu")).required);
    }

    #[test]
    fn no_tag_picks_least_loaded_untagged_server() {
        let busy = candidate(None, 5.0);
        let idle = candidate(None, 1.0);
        let tagged = candidate(Some("gpu"), 0.0);
        let ranked = rank(
            &[busy.clone(), idle.clone(), tagged],
            &TagRequest::default(),
        )
        .unwrap();
        assert_eq!(ranked, vec![idle.id, busy.id]);
    }

    #[test]
    fn optional_tag_prefers_tagged_then_falls_back() {
        let tagged = candidate(Some("gpu"), 9.0);
        let plain = candidate(None, 0.0);
        let ranked = rank(
            &[plain.clone(), tagged.clone()],
            &TagRequest::parse(Some("gpu")),
        )
        .unwrap();
        assert_eq!(ranked, vec![tagged.id, plain.id]);
        let ranked = rank(
            std::slice::from_ref(&plain),
            &TagRequest::parse(Some("gpu")),
        )
        .unwrap();
        assert_eq!(ranked, vec![plain.id]);
    }

    #[test]
    fn required_tag_never_falls_back() {
        let plain = candidate(None, 0.0);
        assert_eq!(
            rank(&[plain], &TagRequest::parse(Some("gpu!"))),
            Err(SelectionError::TagUnavailable("gpu".into()))
        );
        let a = candidate(Some("a"), 3.0);
        let b = candidate(Some("b"), 1.0);
        let ranked = rank(&[a.clone(), b.clone()], &TagRequest::parse(Some("a;b!"))).unwrap();
        assert_eq!(ranked, vec![b.id, a.id]);
    }

    #[test]
    fn empty_pool_is_no_server() {
        assert_eq!(
            rank(&[], &TagRequest::default()),
            Err(SelectionError::NoServer)
        );
    }
}
