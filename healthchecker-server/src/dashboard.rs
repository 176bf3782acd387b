//! The web dashboard's files, embedded in the binary at build time and served at `/` and
//! `/assets/{file}` by [`crate::api`]: nothing is fetched from elsewhere, so it works on a LAN
//! without internet.
//!
//! The page (`dashboard/` beside `src/`) is plain modern JavaScript that reads only the public
//! API: `GET /api/v1/monitors` and `GET /api/v1/uptime` for the list, `GET /api/v1/events` to
//! stay live, and each monitor's `log`, `uptime` and `incidents` for its detail view. Charts are
//! uPlot (MIT), vendored from its npm package in `dashboard/vendor/` with its licence, loaded
//! when a detail view is first shown;
//! `.ci/run` checks the copy against the package the browser tests install.

/// One embedded file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Asset {
    /// Its media type.
    pub content_type: &'static str,
    /// Its bytes.
    pub bytes: &'static [u8],
}

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// Every file, by the name it is served under.
const ASSETS: &[(&str, Asset)] = &[
    (
        "index.html",
        Asset {
            content_type: "text/html; charset=utf-8",
            bytes: include_bytes!("../dashboard/index.html"),
        },
    ),
    (
        "app.js",
        Asset {
            content_type: JS,
            bytes: include_bytes!("../dashboard/app.js"),
        },
    ),
    (
        "app.css",
        Asset {
            content_type: CSS,
            bytes: include_bytes!("../dashboard/app.css"),
        },
    ),
    (
        "favicon.svg",
        Asset {
            content_type: "image/svg+xml",
            bytes: include_bytes!("../dashboard/favicon.svg"),
        },
    ),
    (
        "uPlot.iife.min.js",
        Asset {
            content_type: JS,
            bytes: include_bytes!("../dashboard/vendor/uPlot.iife.min.js"),
        },
    ),
    (
        "uPlot.min.css",
        Asset {
            content_type: CSS,
            bytes: include_bytes!("../dashboard/vendor/uPlot.min.css"),
        },
    ),
];

/// The file served as `name`, if there is one.
pub fn asset(name: &str) -> Option<Asset> {
    ASSETS
        .iter()
        .find(|(served, _)| *served == name)
        .map(|(_, asset)| *asset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_names_only_embedded_assets() {
        let text = |name| std::str::from_utf8(asset(name).expect(name).bytes).expect("UTF-8");
        let page = text("index.html");
        // The page names its assets, or its script does (uPlot, loaded for the detail view).
        let script = text("app.js");
        for (name, _) in ASSETS.iter().filter(|(name, _)| *name != "index.html") {
            assert!(
                page.contains(&format!("assets/{name}"))
                    || script.contains(&format!("assets/{name}")),
                "{name} is not used"
            );
        }
        assert!(
            !page.contains("http://") && !page.contains("https://"),
            "external link"
        );
        assert!(asset("../Cargo.toml").is_none());
    }
}
