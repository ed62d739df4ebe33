//! The path a request is routed by, in one normal form, for the rules decided before routing
//! (the operators' listener).
//!
//! actix's router matches a path with its percent-escapes decoded (either case of hex digits),
//! all but `%2F`, `%25` and `%2B`, which stay escaped so that a path segment may hold them. The
//! raw `req.path()` is not decoded, so a rule that reads it is not the rule the router applies:
//! `/%6detrics` is routed to `/metrics`. [`routing_path`] is the router's own decoded path, with
//! dot segments resolved and runs of slashes read as one (as a proxy in front, or a later
//! router, may read them), so that a rule decided on it holds for every spelling of a path.

use std::borrow::Cow;

use actix_web::dev::ServiceRequest;

/// The path `req` is routed by, decoded as the router decodes it, then [`normalised`].
pub fn routing_path(req: &ServiceRequest) -> Cow<'_, str> {
    normalised(req.match_info().as_str())
}

/// `path` with `.` and `..` segments resolved (RFC 3986 §5.2.4; `..` never climbs above the
/// root) and empty segments (`//`) dropped. A path ending in a slash, or in a dot segment,
/// keeps a trailing slash. Already normal paths come back as they are, without a copy.
pub fn normalised(path: &str) -> Cow<'_, str> {
    let odd = |s: &str| s.is_empty() || s == "." || s == "..";
    if path == "/" || (path.starts_with('/') && !path.split('/').skip(1).any(odd)) {
        return Cow::Borrowed(path);
    }
    let mut kept: Vec<&str> = Vec::new();
    let mut trailing_slash = false;
    for segment in path.split('/') {
        trailing_slash = odd(segment);
        match segment {
            "" | "." => {}
            ".." => {
                kept.pop();
            }
            s => kept.push(s),
        }
    }
    let mut out = String::with_capacity(path.len());
    for segment in &kept {
        out.push('/');
        out.push_str(segment);
    }
    if trailing_slash || kept.is_empty() {
        out.push('/');
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;

    #[test]
    fn normal_paths_come_back_as_they_are() {
        for path in [
            "/",
            "/metrics",
            "/health/ready",
            "/v1/checkouts/chk_1/events",
        ] {
            assert!(
                matches!(normalised(path), Cow::Borrowed(p) if p == path),
                "{path}"
            );
        }
    }

    #[test]
    fn dot_segments_and_empty_segments_are_resolved() {
        for (path, normal) in [
            ("//metrics", "/metrics"),
            ("/health//ready", "/health/ready"),
            ("/v1/../metrics", "/metrics"),
            ("/v1/./../health/./live", "/health/live"),
            ("/../../metrics", "/metrics"),
            ("/health/live/", "/health/live/"),
            ("/health/.", "/health/"),
            ("/health/..", "/"),
            ("", "/"),
            ("metrics", "/metrics"),
        ] {
            assert_eq!(normalised(path), normal, "{path}");
        }
    }

    #[test]
    fn the_routing_path_is_decoded_as_the_router_decodes_it() {
        for (raw, routed) in [
            ("/%6detrics", "/metrics"),
            ("/%6Detrics", "/metrics"),
            ("/%68ealth/%72eady", "/health/ready"),
            ("/v1/%2e%2e/metrics", "/metrics"),
            ("/v1/%2E%2E//metrics", "/metrics"),
            // An escaped slash stays one: the router does not split a segment on it either.
            ("/health%2Fready", "/health%2Fready"),
        ] {
            let req = TestRequest::with_uri(raw).to_srv_request();
            assert_eq!(routing_path(&req), routed, "{raw}");
        }
    }
}
