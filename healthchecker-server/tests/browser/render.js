// The dashboard's first render, measured in Chromium (healthchecker-bench's `dashboard` run calls
// this): `node render.js URL RUNS` opens URL RUNS times, each in a fresh context (no cache), and
// prints one JSON line: for each run, the milliseconds from the start of navigation until the
// list was rendered (every row in the DOM) and until it was painted (two animation frames
// later), and how many rows there were.
import { launchBrowser, openPage } from "./harness.js";

const [url, runsText] = process.argv.slice(2);
const runs = Number(runsText || 5);
if (!url || !(runs > 0)) {
  console.error("usage: node render.js URL RUNS");
  process.exit(2);
}
const browser = await launchBrowser();
const results = [];
try {
  for (let i = 0; i < runs; i++) {
    const { page, context, errors } = await openPage(browser, { viewport: { width: 1280, height: 900 } });
    await page.goto(url, { waitUntil: "commit" });
    await page.waitForFunction(() => performance.getEntriesByName("healthchecker:list-painted").length > 0, null, { timeout: 60_000 });
    const result = await page.evaluate(() => ({
      rendered_ms: performance.getEntriesByName("healthchecker:list-rendered")[0].startTime,
      painted_ms: performance.getEntriesByName("healthchecker:list-painted")[0].startTime,
      rows: document.querySelectorAll("#rows tr").length,
    }));
    result.errors = errors;
    results.push(result);
    await context.close();
  }
} finally {
  await browser.close();
}
console.log(JSON.stringify(results));
