//! The console's static files, embedded in the binary: its stylesheet and
//! script, and the vendored htmx and uPlot (api/console/vendor/, refreshed
//! by ops/console/vendor.sh). Nothing is loaded from elsewhere.

use poem::http::StatusCode;
use poem::web::Path;
use poem::{Response, handler};

/// An embedded file: name, content type, bytes.
type Asset = (&'static str, &'static str, &'static [u8]);

const ASSETS: &[Asset] = &[
    (
        "console.css",
        "text/css; charset=utf-8",
        include_bytes!("../../console/static/console.css"),
    ),
    (
        "console.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../console/static/console.js"),
    ),
    (
        "htmx.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../console/vendor/htmx.min.js"),
    ),
    (
        "uPlot.iife.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../console/vendor/uPlot.iife.min.js"),
    ),
    (
        "uPlot.min.css",
        "text/css; charset=utf-8",
        include_bytes!("../../console/vendor/uPlot.min.css"),
    ),
];

/// The embedded file named `name`, if there is one.
fn find(name: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|(file, _, _)| *file == name)
}

/// `GET /console/assets/:name`: an embedded file, cached for a day (links
/// carry the version, so a new binary's files are fetched afresh).
#[handler]
pub async fn asset(Path(name): Path<String>) -> Response {
    match find(&name) {
        Some((_, content_type, bytes)) => Response::builder()
            .content_type(*content_type)
            .header("Cache-Control", "public, max-age=86400")
            .body(*bytes),
        None => Response::builder()
            .status(StatusCode::NOT_FOUND)
            .content_type("text/plain; charset=utf-8")
            .body("no such console file"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_embedded_files_are_served() {
        assert!(find("htmx.min.js").is_some_and(|(_, _, bytes)| bytes.len() > 10_000));
        assert!(find("uPlot.iife.min.js").is_some());
        for name in ["../Cargo.toml", "", "console.css/", "vendor/htmx.min.js"] {
            assert!(find(name).is_none(), "{name}");
        }
    }
}
