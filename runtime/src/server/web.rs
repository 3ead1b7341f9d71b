//! The web client, served from the binary (`web/`, built by `build.rs`).
//!
//! `/assets/…` are content-hashed, so they are cached for a year and never
//! revalidated; `/` is the client's page (`index.html`, never cached),
//! which routes in the fragment (`/#/c/…`), so no other path is its. Each
//! asset is stored three times, as is and compressed with gzip and brotli,
//! and sent in the best form the browser accepts.

use axum::{
    extract::State,
    http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri},
    response::{IntoResponse, Response},
};

use entente_crds::config::RuntimeConfig;

use super::{api::extract::no_route, state::AppState};

/// One embedded file.
pub struct Asset {
    pub url: &'static str,
    pub content_type: &'static str,
    /// Content-hashed: the same URL always has the same bytes.
    pub immutable: bool,
    pub etag: &'static str,
    pub identity: &'static [u8],
    pub gzip: &'static [u8],
    pub brotli: &'static [u8],
}

include!(concat!(env!("OUT_DIR"), "/web/assets.rs"));

fn asset(url: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|asset| asset.url == url)
}

/// The client's page.
#[cfg(test)]
fn index() -> &'static Asset {
    asset("/").expect("build.rs embeds index.html at /")
}

/// The Content-Security-Policy of the client's page: its own scripts and
/// styles only (nothing inline, nothing from elsewhere), images and media
/// from itself or made in the page (previews, call tracks), connections to
/// itself and to the SFU nodes' signalling, and framing only by
/// `web.frameAncestors` (none: not at all).
pub fn content_security_policy(config: &RuntimeConfig) -> String {
    let ancestors = match config.web.frame_ancestors.as_slice() {
        [] => "'none'".to_string(),
        origins => origins.join(" "),
    };
    let mut connect = vec!["'self'".to_string()];
    for node in config.calls.iter().flat_map(|calls| &calls.sfu_nodes) {
        let base = super::calls::websocket_base(node);
        let origin = match base.split_once("://") {
            Some((scheme, rest)) => format!("{scheme}://{}", rest.split('/').next().unwrap_or("")),
            None => continue,
        };
        if !connect.contains(&origin) {
            connect.push(origin);
        }
    }
    format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; \
         media-src 'self' blob:; connect-src {connect}; font-src 'self'; manifest-src 'self'; \
         form-action 'self'; base-uri 'none'; object-src 'none'; frame-ancestors {ancestors}",
        connect = connect.join(" ")
    )
}

/// The encodings `Accept-Encoding` allows, best first: brotli, gzip.
fn encoding(headers: &HeaderMap) -> Option<&'static str> {
    let accepted: Vec<(String, bool)> = headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|item| {
            let mut parts = item.split(';');
            let name = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let refused = parts.any(|p| {
                p.trim()
                    .strip_prefix("q=")
                    .and_then(|q| q.trim().parse::<f32>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            (name, !refused)
        })
        .collect();
    ["br", "gzip"]
        .into_iter()
        .find(|wanted| accepted.iter().any(|(name, ok)| *ok && name == wanted))
}

/// Serves the client's page and assets for a `GET` or `HEAD`; anything else
/// no route takes is the API's JSON 404.
pub async fn serve(
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let path = uri.path();
    let asset = match asset(path) {
        Some(asset) if method == Method::GET || method == Method::HEAD => asset,
        // A hashed name that is not ours (an old build's, say).
        None if path.starts_with("/assets/") => {
            return (StatusCode::NOT_FOUND, "no such asset").into_response()
        }
        _ => return no_route().await.into_response(),
    };
    let mut response = if headers
        .get(header::IF_NONE_MATCH)
        .is_some_and(|tag| tag.as_bytes() == asset.etag.as_bytes())
    {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let (bytes, coding) = match encoding(&headers) {
            Some("br") => (asset.brotli, Some("br")),
            Some(_) => (asset.gzip, Some("gzip")),
            None => (asset.identity, None),
        };
        let mut response = if method == Method::HEAD {
            let mut response = ().into_response();
            response
                .headers_mut()
                .insert(header::CONTENT_LENGTH, bytes.len().into());
            response
        } else {
            bytes.into_response()
        };
        if let Some(coding) = coding {
            response
                .headers_mut()
                .insert(header::CONTENT_ENCODING, HeaderValue::from_static(coding));
        }
        response
    };
    let out = response.headers_mut();
    out.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    );
    out.insert(header::ETAG, HeaderValue::from_static(asset.etag));
    out.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    out.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if asset.immutable {
        out.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=31536000, immutable"),
        );
    } else {
        out.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        let policy = content_security_policy(&state.config());
        out.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_str(&policy).expect("origins are validated header text"),
        );
        out.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        );
        out.insert(
            "cross-origin-opener-policy",
            HeaderValue::from_static("same-origin"),
        );
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT_ENCODING, value.parse().unwrap());
        headers
    }

    #[test]
    fn the_best_encoding_the_browser_takes_is_chosen() {
        assert_eq!(encoding(&accept("gzip, deflate, br, zstd")), Some("br"));
        assert_eq!(encoding(&accept("gzip")), Some("gzip"));
        assert_eq!(encoding(&accept("br;q=0, gzip;q=0.5")), Some("gzip"));
        assert_eq!(encoding(&accept("identity")), None);
        assert_eq!(encoding(&HeaderMap::new()), None);
    }

    #[test]
    fn framing_is_refused_unless_origins_are_named() {
        let mut config = crate::server::tests_support::config();
        assert!(content_security_policy(&config).ends_with("frame-ancestors 'none'"));
        config.web.frame_ancestors = vec!["https://teams.microsoft.com".into()];
        let teams = content_security_policy(&config);
        assert!(teams.ends_with("frame-ancestors https://teams.microsoft.com"));
        assert!(!teams.contains("unsafe-inline"));
    }

    #[test]
    fn the_page_and_its_assets_are_embedded() {
        let page = std::str::from_utf8(index().identity).unwrap();
        for asset in ASSETS.iter().filter(|a| a.immutable) {
            assert!(
                page.contains(asset.url) || asset.url.ends_with(".svg"),
                "{}",
                asset.url
            );
            assert!(asset.brotli.len() < asset.identity.len() || asset.identity.len() < 100);
        }
        assert!(!page.contains("<script>"), "no inline script");
    }
}
