//! What a Content-Security-Policy for a page we serve unmodified (MSP's 3-D Secure form) must
//! allow: inline scripts and styles, event-handler and style attributes, external scripts, and
//! where its forms post. The page is parsed by `html5ever`, the HTML standard's tokenizer and
//! tree builder (Servo's), into a small tree of our own ([`sink`]), so that the scripts and forms
//! found are those a browser finds: comments, CDATA, raw-text elements, the script element's
//! escaped states, character references in attributes, a `<form>` nested in an open form
//! (ignored by the tree builder) and foreign content (SVG) all read as the standard says.

use std::rc::Rc;

use html5ever::tendril::TendrilSink;
use html5ever::{ParseOpts, local_name, ns, parse_document};

use self::sink::{Node, Sink};

mod sink;

/// What the CSP needs to know about a page.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct PageScan {
    /// Text of each inline `<script>` element (HTML or SVG), as the browser hashes it.
    pub(crate) scripts: Vec<String>,
    /// `src` of each external script.
    pub(crate) external_scripts: Vec<String>,
    /// Values of `on…` event-handler attributes (entity-decoded, as the browser hashes them).
    pub(crate) event_handlers: Vec<String>,
    /// Text of each `<style>` element.
    pub(crate) styles: Vec<String>,
    /// Values of `style` attributes.
    pub(crate) style_attrs: Vec<String>,
    /// The decoded `action` of each form (None: no action, posts to the page's own URL) and the
    /// `formaction` of each button or input that has one.
    pub(crate) form_targets: Vec<Option<String>>,
}

/// Parses `html` as a browser does (scripting enabled) and collects, in document order, what
/// the CSP must allow. Template contents count too: a script may clone them into the page.
pub(crate) fn scan_html(html: &str) -> PageScan {
    let document = parse_document(Sink::default(), ParseOpts::default()).one(html);
    let mut scan = PageScan::default();
    visit(&document, &mut scan);
    scan
}

fn visit(node: &Rc<Node>, scan: &mut PageScan) {
    if node.is_element() {
        let name = &node.name;
        let html = name.ns == ns!(html);
        let svg = name.ns == ns!(svg);
        match name.local {
            local_name!("script") if html || svg => match node.attr("src") {
                Some(src) => scan.external_scripts.push(src),
                None => scan.scripts.push(node.text()),
            },
            local_name!("style") if html || svg => scan.styles.push(node.text()),
            local_name!("form") if html => scan
                .form_targets
                .push(node.attr("action").filter(|a| !a.trim().is_empty())),
            local_name!("button") | local_name!("input") if html => {
                if let Some(target) = node.attr("formaction") {
                    scan.form_targets.push(Some(target));
                }
            }
            _ => {}
        }
        for attr in node.attrs.borrow().iter() {
            let attr_name: &str = &attr.name.local;
            if !attr.name.ns.is_empty() {
                continue; // xlink:…, xml:…: never a handler or a style
            }
            if attr_name.starts_with("on") {
                scan.event_handlers.push(attr.value.to_string());
            } else if attr_name == "style" {
                scan.style_attrs.push(attr.value.to_string());
            }
        }
    }
    for child in node.children.borrow().iter() {
        visit(child, scan);
    }
    if let Some(contents) = &node.template_contents {
        visit(contents, scan);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The action of the one form in `html`.
    fn action(html: &str) -> Option<String> {
        let scan = scan_html(html);
        assert_eq!(scan.form_targets.len(), 1, "{html}: {scan:?}");
        scan.form_targets[0].clone()
    }

    #[test]
    fn entities_are_decoded_as_browsers_do_in_attributes() {
        let decoded = |value: &str| action(&format!("<form action=\"{value}\"></form>"));
        assert_eq!(decoded("a=1&amp;b=2").unwrap(), "a=1&b=2");
        assert_eq!(decoded("&#104;ttps&#x3A;//x&colon;").unwrap(), "https://x:");
        // An unknown name stays as written; a known one without `;` is decoded, except where
        // an `=` or a letter follows it in an attribute (the standard's legacy rule).
        assert_eq!(decoded("a&unknown;b&c").unwrap(), "a&unknown;b&c");
        assert_eq!(decoded("&amp").unwrap(), "&");
        assert_eq!(decoded("?a=1&copy=2").unwrap(), "?a=1&copy=2");
        // NUL is not a character a reference may make: the browser reads U+FFFD.
        assert_eq!(decoded("&#0;").unwrap(), "\u{fffd}");
    }

    #[test]
    fn attribute_quoting_styles_and_case_are_all_understood() {
        // (`/>` does not close a form: without its `</form>` the next form would be one inside
        // an open form, which browsers drop.)
        let scan = scan_html(
            "<FORM ACTION=https://a.example/1></FORM>\
             <form action = 'https://b.example/2' ></form>\
             <form\naction=\"https://c.example/3?x=1&amp;y=2\"\nmethod=post/></form>\
             <form data-action='x' action></form>",
        );
        assert_eq!(
            scan.form_targets,
            vec![
                Some("https://a.example/1".to_owned()),
                Some("https://b.example/2".to_owned()),
                Some("https://c.example/3?x=1&y=2".to_owned()),
                None,
            ]
        );
    }

    #[test]
    fn raw_text_elements_hide_markup_and_scripts_keep_their_exact_text() {
        let scan = scan_html(
            "<title><script>not()</script></title>\
             <textarea><form action='/x'></textarea>\
             <script>if (a < b && c > d) { x('<form>'); }</script>",
        );
        assert_eq!(
            scan.scripts,
            vec!["if (a < b && c > d) { x('<form>'); }".to_owned()]
        );
        assert!(scan.form_targets.is_empty());
    }

    #[test]
    fn unterminated_markup_does_not_panic() {
        for page in [
            "<",
            "<form",
            "<form action='x",
            "<script>x",
            "<!-- x",
            "<a b=",
            "&#xZZ;<p",
        ] {
            let _ = scan_html(page);
        }
        assert_eq!(scan_html("<script>x").scripts, vec!["x".to_owned()]);
    }

    #[test]
    fn comments_hide_markup_as_browsers_end_them() {
        let scan = scan_html(
            "<!-- <script>hidden()</script> <form action='https://hidden.example'> -->\
             <!--> <script>after_abrupt_comment()</script>\
             <!---> <script>after_another()</script>\
             <!-- a -- b --!> <form action='https://shown.example'></form>",
        );
        // `<!-->` and `<!--->` are whole (empty) comments: what follows them is markup; `--!>`
        // ends a comment too.
        assert_eq!(
            scan.scripts,
            vec![
                "after_abrupt_comment()".to_owned(),
                "after_another()".to_owned()
            ]
        );
        assert_eq!(
            scan.form_targets,
            vec![Some("https://shown.example".to_owned())]
        );
    }

    #[test]
    fn cdata_is_a_comment_in_html_and_text_in_svg() {
        // In HTML, `<![CDATA[` opens a bogus comment that ends at the first `>`: the form tag
        // inside is eaten, the text after it is text.
        let scan = scan_html("<![CDATA[<form action='https://a.example'>]]><p>x</p>");
        assert!(scan.form_targets.is_empty(), "{scan:?}");
        // In SVG it is a CDATA section: the script's text is what it holds, markup and all.
        let scan = scan_html("<svg><script><![CDATA[ if (a < b) go('<form>'); ]]></script></svg>");
        assert_eq!(scan.scripts, vec![" if (a < b) go('<form>'); ".to_owned()]);
        assert!(scan.form_targets.is_empty());
    }

    #[test]
    fn a_script_ends_where_the_browser_ends_it() {
        // `<!--<script>` inside a script makes `</script>` part of its text (the "double
        // escaped" state); the element ends at the next one.
        let scan = scan_html(
            "<script><!--<script>x()</script>-->y()</script><form action='https://a.example'>",
        );
        assert_eq!(
            scan.scripts,
            vec!["<!--<script>x()</script>-->y()".to_owned()]
        );
        assert_eq!(
            scan.form_targets,
            vec![Some("https://a.example".to_owned())]
        );
        // `</scriptx>` does not end it; `</SCRIPT >` does.
        let scan = scan_html("<script>a()</scriptx>b()</SCRIPT >c");
        assert_eq!(scan.scripts, vec!["a()</scriptx>b()".to_owned()]);
    }

    #[test]
    fn odd_quoting_reads_as_the_browser_reads_it() {
        let scan = scan_html(
            "<form action=https://a.example/x?q=\"1\"></form>\
             <form action='https://b.example/\"y\"'></form>\
             <form action=`https://c.example`></form>\
             <form action=\"https://d.example\"method=post></form>\
             <form action=\"https://e.example\" action=\"https://ignored.example\"></form>",
        );
        assert_eq!(
            scan.form_targets,
            vec![
                // Unquoted: the quotes are part of the value.
                Some("https://a.example/x?q=\"1\"".to_owned()),
                Some("https://b.example/\"y\"".to_owned()),
                // Backticks quote nothing.
                Some("`https://c.example`".to_owned()),
                Some("https://d.example".to_owned()),
                // The first of a repeated attribute wins.
                Some("https://e.example".to_owned()),
            ]
        );
    }

    #[test]
    fn uppercase_tags_and_attributes_are_the_same_elements() {
        let scan = scan_html(
            "<SCRIPT>One()</SCRIPT><Script SRC='https://cdn.example/x.js'></Script>\
             <STYLE>p{}</STYLE><P STYLE='color:red' ONCLICK='go()'>x</P>\
             <FORM ACTION='https://a.example'><BUTTON FORMACTION='https://b.example'>b</BUTTON></FORM>",
        );
        assert_eq!(scan.scripts, vec!["One()".to_owned()]);
        assert_eq!(
            scan.external_scripts,
            vec!["https://cdn.example/x.js".to_owned()]
        );
        assert_eq!(scan.styles, vec!["p{}".to_owned()]);
        assert_eq!(scan.style_attrs, vec!["color:red".to_owned()]);
        assert_eq!(scan.event_handlers, vec!["go()".to_owned()]);
        assert_eq!(
            scan.form_targets,
            vec![
                Some("https://a.example".to_owned()),
                Some("https://b.example".to_owned())
            ]
        );
    }

    #[test]
    fn a_form_inside_an_open_form_is_dropped_as_browsers_drop_it() {
        let scan = scan_html(
            "<form action='https://a.example'><form action='https://never.example'>\
             <input formaction='https://b.example'></form></form>",
        );
        assert_eq!(
            scan.form_targets,
            vec![
                Some("https://a.example".to_owned()),
                Some("https://b.example".to_owned())
            ]
        );
    }

    proptest::proptest! {
        /// MSP's HTML is input we do not control: no page, however broken, may panic the
        /// scanner (our tree sink carries out every move the tree builder makes).
        #[test]
        fn any_input_scans_without_panicking(
            page in "(<|>|/|=|'|\"|&|#|;|-|!|script|form|action|style|on|é|€| |x){0,60}"
        ) {
            let _ = scan_html(&page);
        }
    }
}
