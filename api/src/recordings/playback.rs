//! Playback: Switchboard serves the recording tree as a BBB server's nginx
//! does, on the same URL shapes, so the links in metadata.xml only need a
//! new host:
//!
//! | URL | served from |
//! |---|---|
//! | `/playback/presentation/2.3/<recordID>` | the bbb-playback player (`recordings.presentation_player_dir`), `index.html` for any path that is not a file |
//! | `/playback/<format>/<recordID>/<file>` | `<dir>/published/<format>/<recordID>/<file>` (`index.html` when empty; the `video` format) |
//! | `/<format>/<recordID>/<file>` | `<dir>/published/<format>/<recordID>/<file>` (the player's assets, thumbnails, podcast audio) |
//! | `/recording-link/<format>/<token>` | redeems a protected recording's one-time link: sets a cookie for that recording and redirects to its playback URL |
//!
//! Files answer with `ETag`, `Last-Modified`, `Cache-Control` and range
//! requests; with `recordings.playback = "x-accel-redirect"` the answer is an
//! empty `X-Accel-Redirect` to `<x_accel_prefix>/<format>/<recordID>/<file>`
//! for nginx to serve. Unknown, unpublished, deleted and protected-without-
//! cookie recordings answer 404, as do paths that try to leave a recording.

use super::RecordingRoutes;
use crate::config::RecordingSettings;
use poem::http::{StatusCode, header};
use poem::web::{Data, Path, StaticFileRequest};
use poem::{FromRequest, IntoResponse, Request, Response, handler};
use std::sync::Arc;
use switchboard_app::recordings::{RecordingService, text_tracks};
use switchboard_domain::ids::TenantId;
use switchboard_domain::recording_ids::{FormatName, RecordId};
use switchboard_recordings::{LayoutError, PlaybackFile, protected};

/// The cookie that admits to one protected recording.
pub fn cookie_name(record_id: &RecordId) -> String {
    format!("sb_rec_{}", record_id.as_str().replace('-', "_"))
}

fn not_found() -> Response {
    Response::builder()
        .status(StatusCode::NOT_FOUND)
        .content_type("text/plain; charset=utf-8")
        .body("Not found")
}

/// The value of a cookie in the request.
fn cookie<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    req.headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.trim())
}

/// A request admitted to a recording.
struct Admitted {
    /// Whether the recording is protected (answers are not cached).
    protected: bool,
    /// Its owner (whose store its files are in).
    tenant: TenantId,
    /// Its recorded formats (a format still being uploaded is not one).
    formats: Vec<String>,
}

/// Whether the request may see the recording: it is published, and, when
/// protected, the request carries a valid cookie for it.
async fn admitted(
    service: &RecordingService,
    req: &Request,
    id: &RecordId,
) -> Result<Option<Admitted>, ()> {
    let recording = match service.store.recording(id.as_str()).await {
        Ok(Some(recording)) => recording,
        Ok(None) => return Ok(None),
        Err(err) => {
            tracing::warn!(error = %err, "cannot read a recording for playback");
            return Err(());
        }
    };
    if recording.state != "published" {
        return Ok(None);
    }
    let admitted = Admitted {
        protected: recording.protected,
        tenant: recording.tenant,
        formats: recording.formats.into_iter().map(|f| f.format).collect(),
    };
    if !admitted.protected {
        return Ok(Some(admitted));
    }
    let Some(value) = cookie(req, &cookie_name(id)) else {
        return Ok(None);
    };
    Ok(
        protected::verify_cookie(service.key(), value, id, protected::unix_now())
            .is_ok()
            .then_some(admitted),
    )
}

pub(super) fn cache_control(settings: &RecordingSettings, protected: bool) -> String {
    if protected {
        "private, no-store".to_owned()
    } else {
        format!("public, max-age={}", settings.cache_max_age_secs)
    }
}

/// Serves `<format>/<recordID>/<rest>` of the published tree.
async fn serve_recording_file(
    routes: &RecordingRoutes,
    req: &Request,
    format: &str,
    record_id: &str,
    rest: &str,
) -> Response {
    let (service, settings) = (&routes.service, &routes.settings);
    let (Ok(format), Ok(id)) = (FormatName::parse(format), RecordId::parse(record_id)) else {
        return not_found();
    };
    let admitted = match admitted(service, req, &id).await {
        Ok(Some(admitted)) => admitted,
        Ok(None) => return not_found(),
        Err(()) => {
            return Response::builder()
                .status(StatusCode::SERVICE_UNAVAILABLE)
                .body("database unavailable");
        }
    };
    let protected = admitted.protected;
    if !admitted.formats.iter().any(|f| f == format.as_str()) {
        return not_found();
    }
    let rest = if rest.is_empty() || rest.ends_with('/') {
        format!("{rest}index.html")
    } else {
        rest.to_owned()
    };
    let request_path = format!("{format}/{id}/{rest}");
    let stores = match service
        .stores
        .candidates(service.store.as_ref(), &admitted.tenant)
        .await
    {
        Ok(stores) => stores,
        Err(err) => {
            tracing::warn!(error = %err, "cannot open a tenant's recordings store for playback");
            return Response::builder()
                .status(StatusCode::SERVICE_UNAVAILABLE)
                .body("recordings store unavailable");
        }
    };
    let mut found = Err(LayoutError::NoSuchFile(String::new()));
    for store in stores {
        found = store
            .resolve_playback(&request_path)
            .await
            .map(|file| (store, file));
        if !matches!(found, Err(LayoutError::NoSuchFile(_))) {
            break;
        }
    }
    let (file, in_default_tree) = match found {
        Ok((store, PlaybackFile::File(file))) => {
            let default = store.describe() == service.files().describe();
            (file, default)
        }
        Ok((store, PlaybackFile::Object(meta))) => {
            let tree = store.object_tree().expect("objects come from object trees");
            return super::objects::serve(settings, req, tree, &meta, protected).await;
        }
        Err(err @ (LayoutError::NoSuchFile(_) | LayoutError::Refused { .. })) => {
            tracing::debug!(error = %err, "playback request refused");
            return not_found();
        }
        Err(err) => {
            tracing::warn!(error = %err, "cannot read a recording's files for playback");
            return Response::builder()
                .status(StatusCode::SERVICE_UNAVAILABLE)
                .body("recordings store unavailable");
        }
    };
    let cache = cache_control(settings, protected);
    // nginx aliases the deployment's tree only; another tree's files are
    // served here.
    if settings.playback == "x-accel-redirect" && in_default_tree {
        let encoded: Vec<String> = request_path
            .split('/')
            .map(switchboard_domain::bbb::params::encode_component)
            .collect();
        let target = format!(
            "{}/{}",
            settings.x_accel_prefix.trim_end_matches('/'),
            encoded.join("/")
        );
        return Response::builder()
            .header("X-Accel-Redirect", target)
            .header(header::CACHE_CONTROL, cache)
            .body(());
    }
    serve_file(req, &file, &cache).await
}

/// Serves one file with conditional and range request support.
async fn serve_file(req: &Request, file: &std::path::Path, cache: &str) -> Response {
    let static_request = match StaticFileRequest::from_request_without_body(req).await {
        Ok(request) => request,
        Err(err) => return err.into_response(),
    };
    match static_request.create_response(file, true, false) {
        Ok(response) => {
            let mut response = response.into_response();
            if let Ok(value) = cache.parse() {
                response.headers_mut().insert(header::CACHE_CONTROL, value);
            }
            response
        }
        Err(err) => poem::Error::from(err).into_response(),
    }
}

/// `/<format>/<recordID>/<file>`: a recording's assets.
#[handler]
pub async fn asset(
    req: &Request,
    Path((format, record_id, rest)): Path<(String, String, String)>,
    Data(routes): Data<&Arc<RecordingRoutes>>,
) -> Response {
    serve_recording_file(routes, req, &format, &record_id, &rest).await
}

/// `/playback/<path>`: the presentation player, or a format's own pages.
#[handler]
pub async fn player(
    req: &Request,
    Path(path): Path<String>,
    Data(routes): Data<&Arc<RecordingRoutes>>,
) -> Response {
    let path = path.trim_start_matches('/');
    if let Some(rest) = path.strip_prefix("presentation/2.3/") {
        return presentation_player(routes, req, rest).await;
    }
    let mut parts = path.splitn(3, '/');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(format), Some(id), rest) => {
            serve_recording_file(routes, req, format, id, rest.unwrap_or("")).await
        }
        _ => not_found(),
    }
}

/// The bbb-playback player: its files, and `index.html` for the record id
/// paths it routes itself.
async fn presentation_player(routes: &RecordingRoutes, req: &Request, rest: &str) -> Response {
    let (service, settings) = (&routes.service, &routes.settings);
    let first = rest.split('/').next().unwrap_or("");
    let mut protected = false;
    if let Ok(id) = RecordId::parse(first) {
        match admitted(service, req, &id).await {
            Ok(Some(admitted)) => protected = admitted.protected,
            _ => return not_found(),
        }
    }
    let Some(dir) = &settings.presentation_player_dir else {
        return Response::builder()
            .status(StatusCode::NOT_FOUND)
            .content_type("text/plain; charset=utf-8")
            .body("The presentation player is not installed here (set recordings.presentation_player_dir).");
    };
    let safe = rest
        .split('/')
        .all(|segment| segment != ".." && segment != "." && !segment.contains('\\'));
    let candidate = dir.join(rest);
    let file = match (safe, candidate.canonicalize(), dir.canonicalize()) {
        (true, Ok(real), Ok(base)) if real.starts_with(&base) && real.is_file() => real,
        _ => dir.join("index.html"),
    };
    serve_file(req, &file, &cache_control(settings, protected)).await
}

/// `/recording-link/<format>/<token>`: redeems a one-time link.
#[handler]
pub async fn redeem_link(
    Path((format, token)): Path<(String, String)>,
    Data(routes): Data<&Arc<RecordingRoutes>>,
) -> Response {
    let (service, settings) = (&routes.service, &routes.settings);
    let now = protected::unix_now();
    // Checked first, used up last: a link whose recording or format is not
    // (yet) there stays usable (issue 15.A7).
    let token = match protected::verify_link_token(service.key(), &token, now) {
        Ok(token) => token,
        Err(err) => {
            tracing::info!(reason = %err, "playback link refused");
            return not_found();
        }
    };
    let id = token.record_id.clone();
    let recording = match service.store.recording(id.as_str()).await {
        Ok(Some(recording)) if recording.state == "published" => recording,
        _ => return not_found(),
    };
    let Some(playback) = recording.formats.iter().find(|f| f.format == format) else {
        return not_found();
    };
    use protected::UsedTokens as _;
    match service
        .used_tokens()
        .claim(&token.nonce, token.expires_at, now)
        .await
    {
        Ok(true) => {}
        Ok(false) => {
            tracing::info!("playback link refused: used before");
            return not_found();
        }
        Err(err) => {
            tracing::warn!(error = %err, "cannot check a playback link");
            return Response::builder()
                .status(StatusCode::SERVICE_UNAVAILABLE)
                .body("try again");
        }
    }
    let target = switchboard_recordings::metadata::playback_url(
        &playback.url,
        service.public_url(),
        &playback.format,
        id.as_str(),
    );
    let expires = now + settings.cookie_ttl_secs;
    let value = protected::mint_cookie(service.key(), &id, expires);
    let secure = if service.public_url().starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    let formats: Vec<&str> = recording
        .formats
        .iter()
        .map(|f| f.format.as_str())
        .collect();
    let mut response = Response::builder()
        .status(StatusCode::FOUND)
        .header(header::LOCATION, target)
        .header(header::CACHE_CONTROL, "no-store");
    // One cookie per path of this recording, so a browser sends it only
    // there: a viewer of many recordings never carries them all in one
    // request (proxies cap header sizes; issue 15.A7).
    for path in cookie_paths(service.public_url(), &id, &formats) {
        response = response.header(
            header::SET_COOKIE,
            format!(
                "{}={value}; Path={path}; Max-Age={}; HttpOnly; SameSite=Lax{secure}",
                cookie_name(&id),
                settings.cookie_ttl_secs
            ),
        );
    }
    response.body(())
}

/// The paths a protected recording is served under, below the public URL's
/// own path: the player and every format's files, and its captions.
fn cookie_paths(public_url: &str, id: &RecordId, formats: &[&str]) -> Vec<String> {
    let base = public_url
        .split_once("://")
        .and_then(|(_, rest)| rest.find('/').map(|at| &rest[at..]))
        .unwrap_or("")
        .trim_end_matches('/');
    let id = id.as_str();
    let mut paths = vec![
        format!("{base}/playback/presentation/2.3/{id}"),
        format!("{base}/captions/{id}"),
    ];
    for format in formats {
        paths.push(format!("{base}/playback/{format}/{id}"));
        paths.push(format!("{base}/{format}/{id}"));
    }
    paths
}

/// `/captions/<recordID>/<kind>_<lang>.vtt`: a text track.
#[handler]
pub async fn caption(
    req: &Request,
    Path((record_id, file)): Path<(String, String)>,
    Data(routes): Data<&Arc<RecordingRoutes>>,
) -> Response {
    let service = &routes.service;
    let Ok(id) = RecordId::parse(&record_id) else {
        return not_found();
    };
    let protected = match admitted(service, req, &id).await {
        Ok(Some(admitted)) => admitted.protected,
        _ => return not_found(),
    };
    match text_tracks::file(service, &id, &file).await {
        Some(path) => serve_file(req, &path, &cache_control(&routes.settings, protected)).await,
        None => not_found(),
    }
}
