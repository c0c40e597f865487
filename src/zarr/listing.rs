//! The HTML listings of `/zarr/` and `/zarr/NAME/`: what fsspec's HTTP filesystem parses
//! (`<a href>` links, relative to the listed URL, a trailing `/` marking a directory) to list
//! a store opened without consolidated metadata.

/// A page linking each of `entries` (relative keys), titled `title`.
pub fn html(title: &str, entries: &[String]) -> String {
    let mut page = format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{0}</title></head>\n<body><h1>{0}</h1>\n<ul>\n",
        escape(title)
    );
    for entry in entries {
        let e = escape(entry);
        page.push_str(&format!("<li><a href=\"{e}\">{e}</a></li>\n"));
    }
    page.push_str("</ul>\n</body></html>\n");
    page
}

/// Dataset names and keys are plain ASCII without markup, but a listing must not become
/// markup if that ever changes.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::html;

    #[test]
    fn links_every_entry_once() {
        let page = html("/zarr/", &["zarr.json".into(), "a.b/".into(), "<x>".into()]);
        assert!(page.contains("<a href=\"zarr.json\">zarr.json</a>"));
        assert!(page.contains("<a href=\"a.b/\">a.b/</a>"));
        assert!(page.contains("&lt;x&gt;"));
        assert_eq!(page.matches("<a href").count(), 3);
    }
}
