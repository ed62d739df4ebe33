//! A small HTML scanner for one purpose: finding what a Content-Security-Policy for a page we
//! serve unmodified (MSP's 3-D Secure form) must allow: inline scripts and styles, event-handler
//! and style attributes, external scripts, and where its forms post. It is not a general parser.

/// What the CSP needs to know about a page.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct PageScan {
    /// Text of each inline `<script>` element.
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

/// A small HTML tokeniser, enough for CSP purposes: tags with double-, single- or unquoted
/// attributes, case-insensitive names, comments, doctype, and raw-text elements (`script`,
/// `style`, `textarea`, `title`…) whose content is not markup. It does not build a tree; it
/// only needs to see every element a browser would see. (The HTML spec's "script data escaped"
/// states, `<!--` inside a script, are not modelled: the script then ends at the first
/// `</script`, which only matters for pages that put that sequence inside a script.)
pub(crate) fn scan_html(html: &str) -> PageScan {
    let mut scan = PageScan::default();
    let bytes = html.as_bytes();
    let mut i = 0;
    while let Some(off) = html[i..].find('<') {
        let start = i + off;
        let rest = &html[start..];
        if let Some(comment) = rest.strip_prefix("<!--") {
            i = match comment.find("-->") {
                Some(end) => start + 4 + end + 3,
                None => html.len(),
            };
            continue;
        }
        if rest.starts_with("<!") || rest.starts_with("<?") || rest.starts_with("</") {
            // Doctype, processing instruction, end tag: nothing the CSP needs.
            i = match rest.find('>') {
                Some(end) => start + end + 1,
                None => html.len(),
            };
            continue;
        }
        if !bytes
            .get(start + 1)
            .is_some_and(|b| b.is_ascii_alphabetic())
        {
            // A bare `<` in text.
            i = start + 1;
            continue;
        }
        let (tag, after) = parse_tag(html, start + 1);
        i = after;
        match tag.name.as_str() {
            "script" => {
                let (text, next) = raw_text(html, i, "script");
                i = next;
                match tag.attr("src") {
                    Some(src) => scan.external_scripts.push(src.to_owned()),
                    None => scan.scripts.push(text.to_owned()),
                }
            }
            "style" => {
                let (text, next) = raw_text(html, i, "style");
                i = next;
                scan.styles.push(text.to_owned());
            }
            "textarea" | "title" | "xmp" | "iframe" | "noembed" | "noframes" => {
                let (_, next) = raw_text(html, i, &tag.name);
                i = next;
            }
            "form" => scan.form_targets.push(
                tag.attr("action")
                    .map(str::to_owned)
                    .filter(|a| !a.trim().is_empty()),
            ),
            "button" | "input" => {
                if let Some(a) = tag.attr("formaction") {
                    scan.form_targets.push(Some(a.to_owned()));
                }
            }
            _ => {}
        }
        for (name, value) in &tag.attrs {
            if name.starts_with("on") {
                scan.event_handlers.push(value.clone());
            } else if name == "style" {
                scan.style_attrs.push(value.clone());
            }
        }
    }
    scan
}

struct Tag {
    /// Lowercased.
    name: String,
    /// Lowercased names, entity-decoded values; the first of a repeated attribute wins, as in
    /// browsers.
    attrs: Vec<(String, String)>,
}

impl Tag {
    fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Parses a start tag from just after its `<`; returns the tag and the index after its `>`.
fn parse_tag(html: &str, mut i: usize) -> (Tag, usize) {
    let bytes = html.as_bytes();
    let is_name_end = |b: u8| b.is_ascii_whitespace() || b == b'>' || b == b'/';
    let name_start = i;
    while i < bytes.len() && !is_name_end(bytes[i]) {
        i += 1;
    }
    let name = html[name_start..i].to_ascii_lowercase();
    let mut attrs: Vec<(String, String)> = Vec::new();
    loop {
        while i < bytes.len() && (bytes[i].is_ascii_whitespace() || bytes[i] == b'/') {
            i += 1;
        }
        if i >= bytes.len() {
            return (Tag { name, attrs }, i);
        }
        if bytes[i] == b'>' {
            return (Tag { name, attrs }, i + 1);
        }
        let attr_start = i;
        // An attribute name may start with `=` (the spec's odd case), then runs to `=`, space,
        // `/` or `>`.
        i += 1;
        while i < bytes.len() && !is_name_end(bytes[i]) && bytes[i] != b'=' {
            i += 1;
        }
        let attr_name = html[attr_start..i].to_ascii_lowercase();
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        let mut value = String::new();
        if i < bytes.len() && bytes[i] == b'=' {
            i += 1;
            while i < bytes.len() && bytes[i].is_ascii_whitespace() {
                i += 1;
            }
            match bytes.get(i) {
                Some(&q @ (b'"' | b'\'')) => {
                    let v_start = i + 1;
                    let v_end = html[v_start..]
                        .find(q as char)
                        .map_or(html.len(), |e| v_start + e);
                    value = decode_entities(&html[v_start..v_end]);
                    i = (v_end + 1).min(html.len());
                }
                _ => {
                    let v_start = i;
                    while i < bytes.len() && !bytes[i].is_ascii_whitespace() && bytes[i] != b'>' {
                        i += 1;
                    }
                    value = decode_entities(&html[v_start..i]);
                }
            }
        }
        if !attrs.iter().any(|(n, _)| *n == attr_name) {
            attrs.push((attr_name, value));
        }
    }
}

/// The text of a raw-text element from `from` up to its end tag (matched case-insensitively),
/// and the index after that end tag.
fn raw_text<'a>(html: &'a str, from: usize, name: &str) -> (&'a str, usize) {
    let needle = format!("</{name}");
    let bytes = html.as_bytes();
    let mut search = from;
    while let Some(off) = find_ascii_ci(&html[search..], &needle) {
        let end = search + off;
        // `</scriptx` does not close `<script>`: the name must end there.
        let after = end + needle.len();
        if bytes
            .get(after)
            .is_none_or(|b| b.is_ascii_whitespace() || *b == b'>' || *b == b'/')
        {
            let close = html[after..]
                .find('>')
                .map_or(html.len(), |e| after + e + 1);
            return (&html[from..end], close);
        }
        search = after;
    }
    (&html[from..], html.len())
}

fn find_ascii_ci(haystack: &str, needle: &str) -> Option<usize> {
    let (h, n) = (haystack.as_bytes(), needle.as_bytes());
    if n.len() > h.len() {
        return None;
    }
    (0..=h.len() - n.len()).find(|&i| h[i..i + n.len()].eq_ignore_ascii_case(n))
}

/// Decodes the character references that occur in attribute values: numeric ones and the named
/// ones that matter for URLs and scripts. Unknown names stay as written, as browsers leave them.
pub(crate) fn decode_entities(value: &str) -> String {
    if !value.contains('&') {
        return value.to_owned();
    }
    const NAMED: &[(&str, char)] = &[
        ("amp", '&'),
        ("lt", '<'),
        ("gt", '>'),
        ("quot", '"'),
        ("apos", '\''),
        ("nbsp", '\u{a0}'),
        ("sol", '/'),
        ("colon", ':'),
        ("equals", '='),
        ("quest", '?'),
        ("num", '#'),
        ("percnt", '%'),
        ("plus", '+'),
    ];
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let body_end = rest[1..]
            .find(|c: char| !c.is_ascii_alphanumeric() && c != '#')
            .map_or(rest.len(), |e| e + 1);
        let body = &rest[1..body_end];
        let has_semicolon = rest[body_end..].starts_with(';');
        let decoded = if let Some(num) = body.strip_prefix('#') {
            let code = match num.strip_prefix(['x', 'X']) {
                Some(hex) => u32::from_str_radix(hex, 16).ok(),
                None => num.parse::<u32>().ok(),
            };
            code.map(|c| char::from_u32(c).unwrap_or('\u{fffd}'))
        } else {
            NAMED
                .iter()
                .find(|(n, _)| *n == body && (has_semicolon || *n == "amp"))
                .map(|(_, c)| *c)
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &rest[body_end + usize::from(has_semicolon)..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entities_are_decoded_as_browsers_do_in_attributes() {
        assert_eq!(decode_entities("a=1&amp;b=2"), "a=1&b=2");
        assert_eq!(decode_entities("&#104;ttps&#x3A;//x&colon;"), "https://x:");
        assert_eq!(decode_entities("a&unknown;b&c"), "a&unknown;b&c");
        assert_eq!(decode_entities("&amp"), "&");
        assert_eq!(decode_entities("&#0;"), "\u{0}");
    }

    #[test]
    fn attribute_quoting_styles_and_case_are_all_understood() {
        let scan = scan_html(
            "<FORM ACTION=https://a.example/1></FORM>\
             <form action = 'https://b.example/2' ></form>\
             <form\naction=\"https://c.example/3?x=1&amp;y=2\"\nmethod=post/>\
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

    proptest::proptest! {
        /// MSP's HTML is input we do not control: no page, however broken, may panic the
        /// scanner (it slices by byte offsets, so multi-byte text is the risk).
        #[test]
        fn any_input_scans_without_panicking(
            page in "(<|>|/|=|'|\"|&|#|;|-|!|script|form|action|style|on|é|€| |x){0,60}"
        ) {
            let _ = scan_html(&page);
            let _ = decode_entities(&page);
        }
    }
}
