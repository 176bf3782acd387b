// The dashboard in a real browser (Debian's chromium, driven by playwright-core) against the real
// server on 127.0.0.1 with a token, and loopback targets. Run inside a network namespace by
// .ci/run through tests/browser.rs (`cargo test`), or by hand: `npm ci --ignore-scripts && node --test`.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { launchBrowser, openPage, startServer, startTarget, withScreenshot, PATIENCE_MS } from "./harness.js";

const TOKEN = "browser-test-token-4711";

// What a row's last-checks bar holds (`data-outcomes`, oldest first: 0 pass, 1 warn, 2 fail;
// `data-newest`, the time of its newest check) and what it draws: the bands of colour of its
// background, as the browser computed them (colour and cells, left to right; 7 px a cell), and
// the points of the sparkline.
async function drawn(page, app) {
  return page.$eval(`#rows tr[data-app="${app}"]`, (tr) => {
    const bar = tr.querySelector(".bar");
    const style = getComputedStyle(bar);
    const bands = [];
    let from = 0;
    // Each band is a colour from 0 (that is, where the one before ended) to where it ends, which
    // the browser writes as two stops: "rgb(…) 0px, rgb(…) 140px".
    for (const [, colour, to] of style.backgroundImage.matchAll(/(rgba?\([^)]*\)) 0px, \1 ([\d.]+)px/g)) {
      if (Number(to) > from) bands.push({ colour, cells: (Number(to) - from) / 7 });
      from = Number(to);
    }
    const line = tr.querySelector("svg.spark polyline");
    return {
      outcomes: bar.dataset.outcomes,
      newest: bar.dataset.newest,
      bands,
      empty: style.backgroundColor,
      mask: style.maskImage,
      points: line ? line.getAttribute("points").trim().split(/\s+/).length : 0,
      box: bar.getBoundingClientRect().width,
    };
  });
}

const GREEN = "rgb(26, 127, 55)";
const RED = "rgb(207, 34, 46)";
const EMPTY = "rgb(216, 222, 228)";

describe("dashboard", () => {
  let server;
  let browser;
  const targets = {};

  before(async () => {
    for (const name of ["media-center", "nas", "printer"]) targets[name] = await startTarget();
    server = await startServer({ token: TOKEN });
    for (const [name, target] of Object.entries(targets)) await server.register(name, target);
    // Every monitor has been checked once, so rows have something to show.
    await server.waitFor("/api/v1/monitors", (body) => body.monitors.every((m) => m.last_check), "a first check of each monitor");
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
    for (const target of Object.values(targets)) await target.close();
  });

  async function open(t, options) {
    const opened = await openPage(browser, options);
    t.after(() => opened.context.close());
    await opened.page.goto(server.url + "/");
    await opened.page.waitForSelector("html[data-ready='1'][data-live='1']", { timeout: PATIENCE_MS });
    return opened;
  }

  test("lists the monitors with their state, uptime and last checks", async (t) => {
    const { page, errors } = await open(t);
    await withScreenshot(t.name, page, async () => {
      const names = await page.$$eval("#rows tr", (rows) => rows.map((row) => row.dataset.app));
      assert.deepEqual(names, ["media-center", "nas", "printer"]);
      for (const name of names) {
        const row = page.locator(`#rows tr[data-app="${name}"]`);
        assert.equal(await row.locator(".state").textContent(), "HEALTHY");
        assert.equal(await row.getAttribute("data-state"), "HEALTHY");
        assert.match(await row.locator(".c-up24").textContent(), /%$/);
        const bar = await drawn(page, name);
        assert.match(bar.outcomes, /^0+$/, "passed checks in the bar");
        const n = bar.outcomes.length;
        assert.deepEqual(bar.bands, [
          ...(n < 30 ? [{ colour: EMPTY, cells: 30 - n }] : []),
          { colour: GREEN, cells: n },
        ], "the empty cells, then one green cell per check");
        assert.match(bar.mask, /^url\("data:image\/svg\+xml/, "cut into cells");
        assert.equal(bar.box, 208, "the bar is drawn");
        assert.equal(bar.points, n >= 2 ? n : 0, "a point of the sparkline per check");
      }
      assert.match(await page.locator("#summary").textContent(), /^3 monitored/);
      assert.deepEqual(errors, []);
    });
  });

  test("a target that starts answering 503 shows UNHEALTHY within 3 s, without a reload", async (t) => {
    const { page, errors } = await open(t);
    await withScreenshot(t.name, page, async () => {
      await page.evaluate(() => { window.notReloaded = true; });
      targets.nas.fail = true;
      t.after(() => { targets.nas.fail = false; });
      await server.waitFor("/api/v1/monitors/nas", (m) => m.state === "UNHEALTHY", "nas UNHEALTHY in the API");
      const seen = Date.now();
      await page.waitForSelector('#rows tr[data-app="nas"][data-state="UNHEALTHY"] .state.UNHEALTHY', { timeout: 3000 });
      assert.ok(Date.now() - seen <= 3000);
      assert.equal(await page.evaluate(() => window.notReloaded), true, "the page was not reloaded");
      const bar = await drawn(page, "nas");
      assert.match(bar.outcomes, /22$/, "the failed checks are the newest in the bar");
      const last = bar.bands[bar.bands.length - 1];
      assert.equal(last.colour, RED, "and drawn in red on the right");
      assert.equal(last.cells, bar.outcomes.match(/2+$/)[0].length);
      assert.match(await page.locator("#summary").textContent(), /1 unhealthy/);
      assert.deepEqual(errors, []);
    });
  });

  test("a row's bar and sparkline follow the checks live", async (t) => {
    const { page, errors } = await open(t);
    await withScreenshot(t.name, page, async () => {
      const first = await drawn(page, "printer");
      // The next check of printer (every 5 s) comes over the event stream and redraws its row.
      await page.waitForFunction(
        (newest) => document.querySelector('#rows tr[data-app="printer"] .bar').dataset.newest !== newest,
        first.newest,
        { timeout: PATIENCE_MS },
      );
      const next = await drawn(page, "printer");
      assert.equal(next.outcomes.length, Math.min(30, first.outcomes.length + 1));
      assert.deepEqual(next.bands[next.bands.length - 1], { colour: GREEN, cells: next.outcomes.length }, "the new check is drawn");
      assert.equal(next.points, next.outcomes.length >= 2 ? next.outcomes.length : 0, "and is a point of the sparkline");
      // Its tooltip says which check is under the pointer.
      const cell = page.locator('#rows tr[data-app="printer"] td.c-bar');
      const box = await cell.locator(".bar").boundingBox();
      await page.mouse.move(box.x + box.width - 2, box.y + box.height / 2);
      assert.match(await cell.getAttribute("title"), /: pass, [0-9.]+ ms$/);
      await page.mouse.move(box.x + 2, box.y + box.height / 2);
      const oldest = await cell.getAttribute("title");
      if (next.outcomes.length < 30) assert.equal(oldest, "no check yet", "the left cells are empty");
      else assert.match(oldest, /: pass, [0-9.]+ ms$/);
      assert.deepEqual(errors, []);
    });
  });

  test("the detail view shows the log, the transitions and the uptime", async (t) => {
    const { page, errors } = await open(t);
    await withScreenshot(t.name, page, async () => {
      await page.click('#rows tr[data-app="media-center"] a.app-name');
      await page.waitForSelector("html[data-detail='media-center']", { timeout: PATIENCE_MS });
      assert.equal(await page.locator("#d-name").textContent(), "media-center");
      assert.ok((await page.locator("#log tbody tr").count()) >= 1, "log rows");
      assert.equal(await page.locator("#log tbody tr").first().locator("td.pass").textContent(), "pass");
      assert.ok((await page.locator("#transitions tbody tr").count()) >= 1, "a transition");
      const cards = await page.locator("#d-cards .card .label").allTextContents();
      assert.deepEqual(cards.slice(0, 4), ["Uptime 24 h", "Uptime 7 d", "Uptime 30 d", "Uptime 365 d"]);
      assert.match(await page.locator("#d-cards .card .value").first().textContent(), /^100 %$/);
      assert.equal(await page.locator("#chart-hourly canvas").count(), 1, "the hourly chart");
      assert.equal(await page.locator("#chart-daily canvas").count(), 1, "the daily chart");
      // A new check arrives live in the log.
      const before = await page.locator("#log tbody tr").count();
      await page.waitForFunction((n) => document.querySelectorAll("#log tbody tr").length > n, before, { timeout: PATIENCE_MS });
      await page.click("a.back");
      await page.waitForSelector("#list-view:not([hidden])");
      assert.deepEqual(errors, []);
    });
  });

  test("pause asks for the token, then pauses; resume works", async (t) => {
    const { page, errors } = await open(t);
    await withScreenshot(t.name, page, async () => {
      await page.goto(server.url + "/#/monitor/printer");
      await page.waitForSelector("html[data-detail='printer']", { timeout: PATIENCE_MS });
      await page.click("#a-pause");
      await page.waitForSelector("#token-dialog[open]");
      await page.fill("#token-input", TOKEN);
      await page.click("#token-ok");
      await server.waitFor("/api/v1/monitors/printer", (m) => m.paused === true, "printer paused");
      await page.waitForSelector("#a-resume:not([hidden])", { timeout: 3000 });
      await page.click("a.back");
      await page.waitForSelector('#rows tr[data-app="printer"] .tag', { timeout: 3000 });
      assert.equal(await page.locator('#rows tr[data-app="printer"] .tag').first().textContent(), "paused");
      // The token is kept for this tab: resuming asks nothing.
      await page.click('#rows tr[data-app="printer"] a.app-name');
      await page.waitForSelector("html[data-detail='printer']");
      await page.click("#a-resume");
      await server.waitFor("/api/v1/monitors/printer", (m) => m.paused === false, "printer resumed");
      assert.equal(await page.locator("#token-dialog[open]").count(), 0);
      // The page's 401 (before the token) is the only failed request, and no error was logged.
      assert.deepEqual(errors.filter((e) => !e.includes("401")), []);
    });
  });

  test("maintenance from the detail view uses the maintenance API, shows until when, and ends", async (t) => {
    const { page, errors } = await open(t);
    await withScreenshot(t.name, page, async () => {
      // The token of the tab (sessionStorage) is this page's own: it is asked for once here.
      await page.goto(server.url + "/#/monitor/nas");
      await page.waitForSelector("html[data-detail='nas']", { timeout: PATIENCE_MS });
      assert.equal(await page.locator("#a-end-maintenance").isHidden(), true);
      await page.click("#a-maintenance");
      await page.waitForSelector("#maintenance-dialog[open]");
      await page.fill("#maintenance-minutes", "20");
      await page.fill("#maintenance-reason", "firmware update");
      await page.click("#maintenance-dialog button[value='ok']");
      await page.waitForSelector("#token-dialog[open]");
      await page.fill("#token-input", TOKEN);
      await page.click("#token-ok");
      const m = await server.waitFor("/api/v1/monitors/nas", (m) => m.maintenance_until, "nas in maintenance");
      const minutes = (Date.parse(m.maintenance_until) - Date.now()) / 60_000;
      assert.ok(minutes > 19 && minutes <= 20, `maintenance for 20 minutes, not ${minutes}`);
      assert.equal(m.maintenance_reason, "firmware update");
      await page.waitForSelector("#d-note:not([hidden])", { timeout: 3000 });
      assert.match(await page.locator("#d-note").textContent(), /^In maintenance until .*\(firmware update\)/);
      await page.click("a.back");
      await page.waitForSelector('#rows tr[data-app="nas"] .tag.maint', { timeout: 3000 });
      await page.click('#rows tr[data-app="nas"] a.app-name');
      await page.waitForSelector("html[data-detail='nas']");
      await page.click("#a-end-maintenance");
      await server.waitFor("/api/v1/monitors/nas", (m) => !m.maintenance_until, "nas out of maintenance");
      await page.waitForSelector("#d-note[hidden]", { state: "attached", timeout: 3000 });
      assert.deepEqual(errors.filter((e) => !e.includes("401")), []);
    });
  });

  test("a wrong token is asked for again and changes nothing", async (t) => {
    const { page, errors } = await open(t);
    await withScreenshot(t.name, page, async () => {
      await page.goto(server.url + "/#/monitor/media-center");
      await page.waitForSelector("html[data-detail='media-center']", { timeout: PATIENCE_MS });
      await page.click("#a-pause");
      await page.waitForSelector("#token-dialog[open]");
      await page.fill("#token-input", "not-the-token");
      await page.click("#token-ok");
      await page.waitForSelector("#token-dialog[open] #token-error:not([hidden])", { timeout: 3000 });
      await page.click("#token-dialog button[value='cancel']");
      const m = (await server.api("GET", "/api/v1/monitors/media-center")).body;
      assert.equal(m.paused, false);
      assert.deepEqual(errors.filter((e) => !e.includes("401")), []);
    });
  });

  test("works on a phone-sized screen, in dark mode", async (t) => {
    const { page, errors } = await open(t, {
      viewport: { width: 390, height: 844 },
      deviceScaleFactor: 2,
      isMobile: true,
      hasTouch: true,
      colorScheme: "dark",
    });
    await withScreenshot(t.name, page, async () => {
      assert.equal(await page.locator("#rows tr").count(), 3);
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert.ok(overflow <= 0, `the page is ${overflow} px wider than the screen`);
      const header = await page.locator(".monitors thead").isVisible();
      assert.equal(header, false, "cards, not a table header");
      const background = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
      assert.equal(background, "rgb(13, 17, 23)", "dark");
      await page.tap('#rows tr[data-app="nas"] .c-bar');
      await page.waitForSelector("html[data-detail='nas']", { timeout: PATIENCE_MS });
      const detailOverflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert.ok(detailOverflow <= 0, `the detail view is ${detailOverflow} px wider than the screen`);
      assert.deepEqual(errors, []);
    });
  });
});

describe("dashboard on a server with a read_token", () => {
  const READ_TOKEN = "browser-read-token-0815";
  let server;
  let browser;
  let target;

  before(async () => {
    target = await startTarget();
    server = await startServer({ token: TOKEN, readToken: READ_TOKEN });
    await server.register("router", target);
    await server.waitFor("/api/v1/monitors/router", (m) => m.last_check, "a first check");
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
    await target?.close();
  });

  test("asks for the read token once, then lists and stays live", async (t) => {
    const { page, context, errors } = await openPage(browser);
    t.after(() => context.close());
    await withScreenshot(t.name, page, async () => {
      await page.goto(server.url + "/");
      await page.waitForSelector("#token-dialog[open]", { timeout: PATIENCE_MS });
      assert.match(await page.locator("#token-why").textContent(), /read token/);
      await page.fill("#token-input", READ_TOKEN);
      await page.click("#token-ok");
      // The event stream sends the token too (an EventSource could not): live, and a 503 shows.
      await page.waitForSelector("html[data-ready='1'][data-live='1']", { timeout: PATIENCE_MS });
      assert.equal(await page.locator('#rows tr[data-app="router"]').getAttribute("data-state"), "HEALTHY");
      target.fail = true;
      await server.waitFor("/api/v1/monitors/router", (m) => m.state === "UNHEALTHY", "router UNHEALTHY in the API");
      await page.waitForSelector('#rows tr[data-app="router"][data-state="UNHEALTHY"]', { timeout: 3000 });
      assert.equal(await page.locator("#token-dialog[open]").count(), 0, "asked once");
      assert.deepEqual(errors.filter((e) => !e.includes("401")), []);
    });
  });
});
