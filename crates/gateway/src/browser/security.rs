//! Security headers for everything the shopper's browser receives, and the
//! Content-Security-Policy built for MSP's 3-D Secure form page.
//!
//! Every response of `/pay`, `/return`, `/cancel` and `/demo`, redirects and error pages
//! included, carries `Cache-Control: no-store` (a pay link or a result must not be served from a
//! shared or back-button cache), `Referrer-Policy: no-referrer` (the pay token and the checkout id
//! are in our URLs and must not leak to MSP, the issuer or the shop), `X-Content-Type-Options:
//! nosniff`, and a CSP with `frame-ancestors 'none'` (no clickjacking of a payment page).
//!
//! Handlers can set the headers themselves with [`apply_browser_headers`], or a scope can be
//! wrapped in [`browser_security_headers`], which also covers the responses of handler errors.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{Error, HttpResponseBuilder};
use aws_lc_rs::digest::{SHA256, digest};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use super::html_scan::scan_html;

/// The gateway's own stylesheet, inlined into every page it renders (no external resources, so
/// a page works from any origin and needs no `'self'` fetches at all).
pub const GATEWAY_STYLESHEET: &str = include_str!("templates/gateway.css");

/// `'sha256-…'` of [`GATEWAY_STYLESHEET`], exactly as it appears between `<style>` and `</style>`
/// in every template. Kept literal so that [`GATEWAY_PAGE_CSP`] can be a `const`; the unit test
/// `gateway_csp_hashes_the_stylesheet_the_pages_embed` fails (printing the right value) when the
/// stylesheet changes and this is not updated.
macro_rules! gateway_style_hash {
    () => {
        "'sha256-sHT6NFkE5tGbIpxgMG4t3DN/EOjA5d4NKNE4dOW6h7w='"
    };
}
const GATEWAY_STYLE_HASH: &str = gateway_style_hash!();

/// The CSP of the gateway's own pages (error pages, redirects, the demo result page).
///
/// Why each directive:
/// - `default-src 'none'`: the pages load nothing: no scripts, images, fonts or connections.
/// - `style-src` the hash of our one inline stylesheet rather than `'unsafe-inline'`: an
///   injected `<style>` (should escaping ever fail) could restyle a payment page to mislead the
///   shopper, and the hash costs nothing since the stylesheet is a constant. Consequence: the
///   templates use no `style="…"` attributes (they would need `'unsafe-hashes'`).
/// - `form-action 'self'`: the only form we serve posts to ourselves (the demo). Pages whose
///   form leads elsewhere through redirects use [`gateway_page_csp_with_form_targets`].
/// - `frame-ancestors 'none'`: no page of ours may be framed (clickjacking).
/// - `base-uri 'none'`: an injected `<base>` cannot re-point relative links.
///
/// No `upgrade-insecure-requests`: the sandbox runs on plain http on localhost.
pub const GATEWAY_PAGE_CSP: &str = concat!(
    "default-src 'none'; style-src ",
    gateway_style_hash!(),
    "; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
);

/// [`GATEWAY_PAGE_CSP`] with extra `form-action` origins, for a page whose form submission is
/// redirected to other origins: Chrome checks `form-action` against every redirect that follows
/// a form submission (the demo's checkout → `/pay/…` → MSP's or the simulator's 3DS page).
/// `origins` are `scheme://host[:port]`; anything that does not parse as such is left out.
pub fn gateway_page_csp_with_form_targets(origins: &[&str]) -> String {
    let mut form_action = String::from("'self'");
    for origin in origins {
        if let Some(o) = origin_of(origin)
            && !form_action.split(' ').any(|existing| existing == o)
        {
            form_action.push(' ');
            form_action.push_str(&o);
        }
    }
    format!(
        "default-src 'none'; style-src {GATEWAY_STYLE_HASH}; form-action {form_action}; \
         frame-ancestors 'none'; base-uri 'none'"
    )
}

/// The browser pages' security headers with the given CSP, for handlers that build their own responses.
pub fn browser_headers(csp: &str) -> [(HeaderName, HeaderValue); 4] {
    [
        (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        (
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (header::CONTENT_SECURITY_POLICY, csp_header_value(csp)),
    ]
}

/// Sets [`browser_headers`] on a response being built (replacing any earlier value).
pub fn apply_browser_headers<'a>(
    builder: &'a mut HttpResponseBuilder,
    csp: &str,
) -> &'a mut HttpResponseBuilder {
    for (name, value) in browser_headers(csp) {
        builder.insert_header((name, value));
    }
    builder
}

/// A CSP string as a header value. Our CSPs are built from origins that `url` serialised and
/// base64 hashes, all visible ASCII; should one ever not be, send the strictest policy rather
/// than none.
fn csp_header_value(csp: &str) -> HeaderValue {
    HeaderValue::from_str(csp).unwrap_or_else(|_| {
        HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'; base-uri 'none'")
    })
}

/// Middleware for the browser scopes (`actix_web::middleware::from_fn(browser_security_headers)`):
/// sets `Cache-Control`, `Referrer-Policy` and `X-Content-Type-Options` on every response, and
/// [`GATEWAY_PAGE_CSP`] when the handler did not set a CSP of its own (the form-mode page sets
/// the one from [`csp_for_msp_form`]). Error responses of handlers and extractors get them too.
pub async fn browser_security_headers(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    // Handler and extractor errors arrive here already turned into responses (actix's handler
    // service does that), so error pages get the headers. Only an error from a middleware inside
    // this one would pass through bare: wrap this one innermost on the browser scopes. (The
    // request cannot be cloned before `next.call` to rebuild such a response: routing needs it
    // unshared.)
    let mut res = next.call(req).await?.map_into_boxed_body();
    let headers = res.headers_mut();
    for (name, value) in browser_headers(GATEWAY_PAGE_CSP) {
        if name == header::CONTENT_SECURITY_POLICY && headers.contains_key(&name) {
            continue;
        }
        headers.insert(name, value);
    }
    Ok(res)
}

/// Why MSP's 3DS form page cannot be served in form mode. The caller falls back to redirect
/// mode (MSP's `payment_url`), as the configuration allows when one of the two is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormCspError {
    #[error("MSP's verification page has no form: use the payment_url redirect instead")]
    NoForm,
    #[error(
        "MSP's verification page has a form posting to `{0}`, which is not an absolute http(s) \
         URL (it would post to the gateway itself): use the payment_url redirect instead"
    )]
    RelativeFormAction(String),
    #[error(
        "MSP's verification page loads an external script (`{0}`) that a hash-based CSP cannot \
         allow: use the payment_url redirect instead"
    )]
    ExternalScript(String),
}

/// The CSP for MSP's `customer_verification.html`, served byte for byte:
/// `default-src 'none'`; `script-src` the hashes of its inline scripts (and of inline event
/// handlers, with `'unsafe-hashes'`); `style-src` likewise for inline styles, only if it has
/// any; `form-action` the origin of every form target; `frame-ancestors 'none'; base-uri 'none'`.
///
/// The page's forms must post to absolute http(s) URLs: a missing or relative `action` would
/// post to the gateway, so it is refused, as is an external `<script src>`.
pub fn csp_for_msp_form(html: &str) -> Result<String, FormCspError> {
    // The browser's input stream turns CR LF and lone CR into LF before it tokenises, and hashes
    // the script text after that: hash what the browser hashes.
    let html = html.replace("\r\n", "\n").replace('\r', "\n");
    let scan = scan_html(&html);

    let mut script_src: Vec<String> = Vec::new();
    for text in &scan.scripts {
        push_unique(&mut script_src, sha256_source(text));
    }
    if !scan.event_handlers.is_empty() {
        push_unique(&mut script_src, "'unsafe-hashes'".to_owned());
        for handler in &scan.event_handlers {
            push_unique(&mut script_src, sha256_source(handler));
        }
    }
    if let Some(src) = scan.external_scripts.first() {
        return Err(FormCspError::ExternalScript(src.clone()));
    }

    let mut style_src: Vec<String> = Vec::new();
    for text in &scan.styles {
        push_unique(&mut style_src, sha256_source(text));
    }
    if !scan.style_attrs.is_empty() {
        push_unique(&mut style_src, "'unsafe-hashes'".to_owned());
        for style in &scan.style_attrs {
            push_unique(&mut style_src, sha256_source(style));
        }
    }

    if scan.form_targets.is_empty() {
        return Err(FormCspError::NoForm);
    }
    let mut form_action: Vec<String> = Vec::new();
    for target in &scan.form_targets {
        let origin = target
            .as_deref()
            .and_then(origin_of)
            .ok_or_else(|| FormCspError::RelativeFormAction(target.clone().unwrap_or_default()))?;
        push_unique(&mut form_action, origin);
    }

    let mut csp = String::from("default-src 'none'");
    if !script_src.is_empty() {
        csp.push_str("; script-src ");
        csp.push_str(&script_src.join(" "));
    }
    if !style_src.is_empty() {
        csp.push_str("; style-src ");
        csp.push_str(&style_src.join(" "));
    }
    csp.push_str("; form-action ");
    csp.push_str(&form_action.join(" "));
    csp.push_str("; frame-ancestors 'none'; base-uri 'none'");
    Ok(csp)
}

/// Appends `pairs` to a URL's query (`checkout_id=…&status=…` on the merchant's
/// return URL), keeping its own query and putting the fragment back after the query.
pub fn append_query(url: &str, pairs: &[(&str, &str)]) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            {
                let mut query = parsed.query_pairs_mut();
                for (k, v) in pairs {
                    query.append_pair(k, v);
                }
            }
            parsed.into()
        }
        // Return URLs are validated absolute URLs by the time we get here; should one not
        // parse, do the same splice by hand rather than drop the status.
        Err(_) => {
            let (base, fragment) = match url.split_once('#') {
                Some((b, f)) => (b, Some(f)),
                None => (url, None),
            };
            let mut encoded = url::form_urlencoded::Serializer::new(String::new());
            for (k, v) in pairs {
                encoded.append_pair(k, v);
            }
            let sep = match base.find('?') {
                None => "?",
                Some(i) if i + 1 == base.len() || base.ends_with('&') => "",
                Some(_) => "&",
            };
            let mut out = format!("{base}{sep}{}", encoded.finish());
            if let Some(f) = fragment {
                out.push('#');
                out.push_str(f);
            }
            out
        }
    }
}

/// `scheme://host[:port]` of an absolute http(s) URL (default ports omitted, as browsers
/// compare them), or `None`.
fn origin_of(url: &str) -> Option<String> {
    let parsed = url::Url::parse(url.trim()).ok()?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
        return None;
    }
    Some(parsed.origin().ascii_serialization())
}

fn sha256_source(text: &str) -> String {
    format!(
        "'sha256-{}'",
        BASE64.encode(digest(&SHA256, text.as_bytes()))
    )
}

fn push_unique(list: &mut Vec<String>, value: String) {
    if !list.contains(&value) {
        list.push(value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::StatusCode;
    use actix_web::middleware::from_fn;
    use actix_web::test as atest;
    use actix_web::{App, HttpResponse, web};

    /// sha256 + base64 of the exact text, computed here without the module's helper.
    fn expected_hash(text: &str) -> String {
        let digest = aws_lc_rs::digest::digest(&SHA256, text.as_bytes());
        format!(
            "'sha256-{}'",
            base64::engine::general_purpose::STANDARD.encode(digest)
        )
    }

    const SCRIPT: &str = "\n    document.getElementById('noscript-hint').hidden = true;\n    document.forms[0].submit();\n  ";

    /// Shaped like MSP's `customer_verification.html`: hidden fields, an absolute action with
    /// `&amp;` in it, an inline auto-submit script, a `<noscript>` submit button.
    fn msp_like_page() -> String {
        format!(
            "<!DOCTYPE html>\n<html>\n<head><title>3-D Secure</title></head>\n<body>\n\
             <FORM name='downloadForm' Action=\"https://acs.bank.example:8443/challenge?a=1&amp;b=2\" method=\"POST\">\n\
             <input type=\"hidden\" name=\"creq\" value=\"eyJ0aHJlZURT&lt;x&gt;\">\n\
             <input type=hidden name=threeDSSessionData value=abc123>\n\
             <noscript><p id=\"noscript-hint\">Press continue.</p><input type=\"submit\" value=\"Continue\"></noscript>\n\
             </FORM>\n<script>{SCRIPT}</script>\n</body>\n</html>\n"
        )
    }

    #[test]
    fn msp_form_csp_hashes_the_script_and_allows_only_the_form_origin() {
        let csp = csp_for_msp_form(&msp_like_page()).unwrap();
        assert_eq!(
            csp,
            format!(
                "default-src 'none'; script-src {}; form-action https://acs.bank.example:8443; \
                 frame-ancestors 'none'; base-uri 'none'",
                expected_hash(SCRIPT)
            )
        );
    }

    #[test]
    fn the_simulators_verification_page_gets_its_script_and_origin() {
        // Markup of the simulator's `customer_verification.html` (crates/msp-simulator/src/challenge.rs).
        let script = "document.getElementById(\"msp-3ds\").submit();";
        let page = format!(
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>3-D Secure</title></head>\n<body>\n\
             <form id=\"msp-3ds\" method=\"post\" action=\"http://127.0.0.1:40123/3ds/complete\">\n\
             <input type=\"hidden\" name=\"session\" value=\"s&#43;1\">\n\
             <noscript><p>Your bank needs to confirm this payment.</p><button type=\"submit\">Continue</button></noscript>\n\
             </form>\n<script>{script}</script>\n</body></html>"
        );
        assert_eq!(
            csp_for_msp_form(&page).unwrap(),
            format!(
                "default-src 'none'; script-src {}; form-action http://127.0.0.1:40123; \
                 frame-ancestors 'none'; base-uri 'none'",
                expected_hash(script)
            )
        );
    }

    #[test]
    fn known_hash_vector() {
        // `echo -n 'document.forms[0].submit();' | openssl dgst -sha256 -binary | base64`
        let page = "<form action='https://pay.example/'></form><script>document.forms[0].submit();</script>";
        let csp = csp_for_msp_form(page).unwrap();
        assert!(
            csp.contains("script-src 'sha256-8lDeP0UDwCO6/RhblgeH/ctdBzjVpJxrXizsnIk3cEQ='"),
            "{csp}"
        );
    }

    #[test]
    fn crlf_is_normalised_before_hashing_as_browsers_do() {
        let page =
            "<form action=\"https://a.example/x\"></form><script>\r\nvar a = 1;\r\n</script>";
        let csp = csp_for_msp_form(page).unwrap();
        assert!(csp.contains(&expected_hash("\nvar a = 1;\n")), "{csp}");
    }

    #[test]
    fn script_end_tag_is_case_insensitive_and_attributes_on_script_do_not_matter() {
        let page = "<form action=https://a.example/x></form>\
                    <SCRIPT type=\"text/javascript\">var s = '</scriptx>'; go();</Script >";
        let csp = csp_for_msp_form(page).unwrap();
        assert!(
            csp.contains(&expected_hash("var s = '</scriptx>'; go();")),
            "{csp}"
        );
    }

    #[test]
    fn every_script_and_every_form_origin_is_listed_once() {
        let page = "<form action='https://a.example/1'></form><form action='https://a.example/2'></form>\
                    <form action='http://b.example:80/3'><button formaction='https://c.example/'>x</button></form>\
                    <script>one()</script><script>two()</script><script>one()</script>";
        let csp = csp_for_msp_form(page).unwrap();
        assert_eq!(
            csp,
            format!(
                "default-src 'none'; script-src {} {}; form-action https://a.example \
                 http://b.example https://c.example; frame-ancestors 'none'; base-uri 'none'",
                expected_hash("one()"),
                expected_hash("two()")
            )
        );
    }

    #[test]
    fn event_handlers_and_styles_are_allowed_by_hash_only_when_present() {
        let page = "<body onload=\"document.forms[0].submit()\">\
                    <style>p{color:red}</style>\
                    <form action='https://a.example/' style='display:none'></form></body>";
        let csp = csp_for_msp_form(page).unwrap();
        assert!(
            csp.contains(&format!(
                "script-src 'unsafe-hashes' {}",
                expected_hash("document.forms[0].submit()")
            )),
            "{csp}"
        );
        assert!(
            csp.contains(&format!(
                "style-src {} 'unsafe-hashes' {}",
                expected_hash("p{color:red}"),
                expected_hash("display:none")
            )),
            "{csp}"
        );
        assert!(!csp.contains("unsafe-inline"), "{csp}");

        let plain = csp_for_msp_form("<form action='https://a.example/'></form>").unwrap();
        assert!(!plain.contains("script-src"), "{plain}");
        assert!(!plain.contains("style-src"), "{plain}");
    }

    #[test]
    fn commented_out_markup_is_ignored() {
        let page = "<!-- <script>evil()</script> <form action='/x'> -->\
                    <form action='https://a.example/'></form>";
        let csp = csp_for_msp_form(page).unwrap();
        assert!(!csp.contains("script-src"), "{csp}");
    }

    #[test]
    fn pages_that_would_post_to_us_or_load_scripts_are_refused() {
        let cases = [
            ("<p>no form</p>", FormCspError::NoForm),
            (
                "<form method=post></form>",
                FormCspError::RelativeFormAction(String::new()),
            ),
            (
                "<form action=''></form>",
                FormCspError::RelativeFormAction(String::new()),
            ),
            (
                "<form action='/3ds/complete'></form>",
                FormCspError::RelativeFormAction("/3ds/complete".into()),
            ),
            (
                "<form action='//acs.example/x'></form>",
                FormCspError::RelativeFormAction("//acs.example/x".into()),
            ),
            (
                "<form action='javascript:alert(1)'></form>",
                FormCspError::RelativeFormAction("javascript:alert(1)".into()),
            ),
            (
                "<form action='https://a.example/'><button formaction='next'>x</button></form>",
                FormCspError::RelativeFormAction("next".into()),
            ),
            (
                "<form action='https://a.example/'></form><script src='https://cdn.example/x.js'></script>",
                FormCspError::ExternalScript("https://cdn.example/x.js".into()),
            ),
        ];
        for (page, want) in cases {
            assert_eq!(csp_for_msp_form(page), Err(want), "page: {page}");
        }
    }

    #[test]
    fn entities_in_the_form_action_are_decoded_before_taking_the_origin() {
        let page = "<form action=\"&#104;ttps://a.example/&quot;x\"></form>";
        assert!(
            csp_for_msp_form(page)
                .unwrap()
                .contains("form-action https://a.example;")
        );
    }

    #[test]
    fn gateway_csp_hashes_the_stylesheet_the_pages_embed() {
        let want = expected_hash(GATEWAY_STYLESHEET);
        assert_eq!(
            GATEWAY_STYLE_HASH, want,
            "update gateway_style_hash! to {want}"
        );
        assert!(GATEWAY_PAGE_CSP.contains(&want));
        let page = crate::browser::pages::unknown_link_page();
        let scan = scan_html(&page);
        assert_eq!(scan.styles, vec![GATEWAY_STYLESHEET.to_owned()]);
        assert!(scan.scripts.is_empty() && scan.style_attrs.is_empty());
    }

    #[test]
    fn gateway_csp_is_restrictive() {
        for directive in [
            "default-src 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
            "base-uri 'none'",
        ] {
            assert!(GATEWAY_PAGE_CSP.contains(directive), "{directive}");
        }
        assert!(!GATEWAY_PAGE_CSP.contains("unsafe"));
    }

    #[test]
    fn form_targets_add_origins_to_form_action() {
        let csp = gateway_page_csp_with_form_targets(&[
            "http://127.0.0.1:4010/pay/x",
            "http://127.0.0.1:4010",
            "not a url",
        ]);
        assert!(
            csp.contains("form-action 'self' http://127.0.0.1:4010;"),
            "{csp}"
        );
        assert!(csp.contains("frame-ancestors 'none'"));
    }

    #[test]
    fn append_query_keeps_query_and_fragment() {
        let pairs = [("checkout_id", "chk_1"), ("status", "succeeded")];
        let cases = [
            (
                "https://shop.example/return",
                "https://shop.example/return?checkout_id=chk_1&status=succeeded",
            ),
            (
                "https://shop.example/return?order=7&x=a%20b",
                "https://shop.example/return?order=7&x=a%20b&checkout_id=chk_1&status=succeeded",
            ),
            (
                "https://shop.example/return?order=7#done",
                "https://shop.example/return?order=7&checkout_id=chk_1&status=succeeded#done",
            ),
            (
                "https://shop.example/return#/spa/route?x=1",
                "https://shop.example/return?checkout_id=chk_1&status=succeeded#/spa/route?x=1",
            ),
            (
                "http://localhost:8080/demo/result",
                "http://localhost:8080/demo/result?checkout_id=chk_1&status=succeeded",
            ),
        ];
        for (url, want) in cases {
            assert_eq!(append_query(url, &pairs), want, "url: {url}");
        }
        assert_eq!(
            append_query("https://s.example/r", &[("status", "a&b=c d")]),
            "https://s.example/r?status=a%26b%3Dc+d"
        );
    }

    #[test]
    fn append_query_without_a_parsable_url_still_splices_correctly() {
        let pairs = [("checkout_id", "chk_1")];
        assert_eq!(
            append_query("/r?a=1#f", &pairs),
            "/r?a=1&checkout_id=chk_1#f"
        );
        assert_eq!(append_query("/r", &pairs), "/r?checkout_id=chk_1");
        assert_eq!(append_query("/r?", &pairs), "/r?checkout_id=chk_1");
    }

    #[actix_web::test]
    async fn middleware_sets_headers_on_success_redirect_and_error() {
        let app = atest::init_service(
            App::new().service(
                web::scope("/pay")
                    .wrap(from_fn(browser_security_headers))
                    .route(
                        "/ok",
                        web::get().to(|| async { HttpResponse::Ok().body("hi") }),
                    )
                    .route(
                        "/redirect",
                        web::get().to(|| async {
                            HttpResponse::SeeOther()
                                .insert_header(("location", "https://x.example/"))
                                .finish()
                        }),
                    )
                    .route(
                        "/own-csp",
                        web::get().to(|| async {
                            HttpResponse::Ok()
                                .insert_header(("content-security-policy", "default-src 'none'"))
                                .finish()
                        }),
                    )
                    .route(
                        "/err",
                        web::get().to(|| async {
                            Err::<HttpResponse, _>(actix_web::error::ErrorBadRequest("nope"))
                        }),
                    ),
            ),
        )
        .await;
        for (path, status, csp) in [
            ("/pay/ok", StatusCode::OK, GATEWAY_PAGE_CSP),
            ("/pay/redirect", StatusCode::SEE_OTHER, GATEWAY_PAGE_CSP),
            ("/pay/own-csp", StatusCode::OK, "default-src 'none'"),
            ("/pay/err", StatusCode::BAD_REQUEST, GATEWAY_PAGE_CSP),
            ("/pay/missing", StatusCode::NOT_FOUND, GATEWAY_PAGE_CSP),
        ] {
            let res =
                atest::call_service(&app, atest::TestRequest::get().uri(path).to_request()).await;
            assert_eq!(res.status(), status, "{path}");
            let h = res.headers();
            assert_eq!(h.get("cache-control").unwrap(), "no-store", "{path}");
            assert_eq!(h.get("referrer-policy").unwrap(), "no-referrer", "{path}");
            assert_eq!(
                h.get("x-content-type-options").unwrap(),
                "nosniff",
                "{path}"
            );
            assert_eq!(h.get("content-security-policy").unwrap(), csp, "{path}");
        }
    }

    #[test]
    fn builder_gets_all_four_headers() {
        let mut b = HttpResponse::SeeOther();
        apply_browser_headers(&mut b, GATEWAY_PAGE_CSP);
        let res = b.finish();
        assert_eq!(res.headers().get("cache-control").unwrap(), "no-store");
        assert_eq!(
            res.headers().get("content-security-policy").unwrap(),
            GATEWAY_PAGE_CSP
        );
    }
}
