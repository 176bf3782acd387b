// The dashboard's first render, measured in Chromium (healthchecker-bench's `dashboard` run calls
// this): `node render.js URL RUNS` opens URL RUNS times, each in a fresh context (no cache), and
// prints one JSON line: for each run, the milliseconds from the start of navigation until the
// list was rendered (every row in the DOM with its name and state: `rendered_ms`), until it was
// painted (two animation frames later: the first render, `painted_ms`) and until every row was
// painted with its data too (uptime, last-checks bar, sparkline: `complete_ms`); the phases
// before (`phases`: first and last bytes of the page, its assets and the list's requests, the
// page's marks); how many rows there were, how many showed their name and state when first
// painted (`stated`) and how many showed their data in the end (`complete`); how many elements
// the page had, and how long a jump to the end of the list took to be painted.
import { launchBrowser, openPage } from "./harness.js";

const [url, runsText] = process.argv.slice(2);
const runs = Number(runsText || 5);
if (!url || !(runs > 0)) {
  console.error("usage: node render.js URL RUNS");
  process.exit(2);
}
/** `promise`, or an error after `ms` milliseconds. */
function within(ms, promise) {
  let timer;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise((resolve, reject) => { timer = setTimeout(() => reject(new Error(`not within ${ms} ms`)), ms); }),
  ]);
}

const browser = await launchBrowser();
const results = [];
try {
  for (let i = 0; i < runs; i++) {
    const { page, context, errors } = await openPage(browser, { viewport: { width: 1280, height: 900 } });
    await page.goto(url, { waitUntil: "commit" });
    // The page's own marks say when it is done. Waited for from inside the page with a
    // PerformanceObserver, not with playwright's waitForFunction: that one evaluates playwright's
    // injected script (tens of milliseconds) on the page's main thread while the page loads,
    // which no user's browser does.
    const result = await within(60_000, page.evaluate(() => new Promise((resolve) => {
      // Where the time went, in ms from the start of navigation, in order: index.html's first
      // and last byte, the first and last byte of each asset and request (with its size), the
      // page's own marks (the list's answers parsed, rendered, painted).
      const phases = () => {
        const at = [];
        const [nav] = performance.getEntriesByType("navigation");
        at.push(["index.html first byte", nav.responseStart], ["index.html received", nav.responseEnd]);
        for (const entry of performance.getEntriesByType("resource")) {
          const name = new URL(entry.name).pathname.replace(/^\//, "") + new URL(entry.name).search;
          if (!/^(assets\/app\.(js|css)|api\/v1\/(monitors|uptime))/.test(name)) continue;
          at.push([name + " first byte", entry.responseStart]);
          at.push([name + " received (" + Math.round(entry.encodedBodySize / 1024) + " KiB)", entry.responseEnd]);
        }
        at.push(["DOMContentLoaded", nav.domContentLoadedEventEnd]);
        for (const mark of performance.getEntriesByType("mark")) at.push([mark.name, mark.startTime]);
        return at.sort((a, b) => a[1] - b[1]);
      };
      // Rows that show their data: a state, uptime figures, a bar with at least one check
      // and a sparkline (its tooltip says how many checks it has drawn). The markup of
      // builds before 2026-12-01 (a cell per check, an SVG title) counts too, so that older
      // builds can be measured the same way.
      const complete = (rows) => rows.filter((tr) =>
        tr.querySelector(".state")?.textContent === tr.dataset.state &&
        /%$|^–$/.test(tr.querySelector(".c-up24")?.textContent) &&
        (tr.querySelector(".bar[data-outcomes]")?.dataset.outcomes.length > 0 || tr.querySelectorAll(".bar i[class]").length > 0) &&
        /^latency of the last \d+ checks/.test(tr.querySelector(".c-spark")?.title || tr.querySelector("svg.spark title")?.textContent)).length;
      // The first render: every row painted with its name and state (the list's first
      // request); then every row with its data (uptime, bar, sparkline: the second request,
      // filled into the rows drawn). Builds before 2026-12-02 drew both at once
      // (healthchecker:list-painted only).
      let first = null;
      const done = (completeAt) => {
        const rows = [...document.querySelectorAll("#rows tr")];
        resolve({
          rendered_ms: performance.getEntriesByName("healthchecker:list-rendered")[0].startTime,
          painted_ms: performance.getEntriesByName("healthchecker:list-painted")[0].startTime,
          complete_ms: completeAt,
          rows: rows.length,
          stated: first.stated,
          complete: complete(rows),
          nodes: document.getElementsByTagName("*").length,
          phases: phases(),
        });
      };
      new PerformanceObserver((marks, observer) => {
        if (!first && marks.getEntriesByName("healthchecker:list-painted").length) {
          // Counted as soon as it is painted (the observer's callback is the next task).
          const rows = [...document.querySelectorAll("#rows tr")];
          first = {
            stated: rows.filter((tr) => tr.querySelector(".c-name .app-name")?.textContent === tr.dataset.app &&
              tr.querySelector(".state")?.textContent === tr.dataset.state).length,
          };
        }
        const [glancesPainted] = performance.getEntriesByName("healthchecker:glances-painted");
        // A build that draws both at once marks no glances (its list is ready without them).
        const older = document.documentElement.dataset.ready === "1" && !performance.getEntriesByName("healthchecker:glances-rendered").length;
        if (first && (glancesPainted || older)) {
          observer.disconnect();
          done(glancesPainted ? glancesPainted.startTime : performance.getEntriesByName("healthchecker:list-painted")[0].startTime);
        }
      }).observe({ type: "mark", buffered: true });
    })));
    // Rows off the screen are laid out and painted when they come near it: how long from a
    // jump to the end of the list until that screen is painted.
    result.scrolled_ms = await page.evaluate(() => new Promise((resolve) => {
      const started = performance.now();
      document.querySelector("#rows tr:last-child").scrollIntoView();
      requestAnimationFrame(() => requestAnimationFrame(() => resolve(performance.now() - started)));
    }));
    result.errors = errors;
    results.push(result);
    await context.close();
  }
} finally {
  await browser.close();
}
console.log(JSON.stringify(results));
