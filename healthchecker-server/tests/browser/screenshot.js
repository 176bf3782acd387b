// Draws the README's pictures from the real server: `node screenshot.js IMG_FOLDER [SECONDS]`
// starts the server with a few loopback apps (one failing, one warning now and then), lets it
// check them for SECONDS (default 60), and writes dashboard.png (the list), dashboard-detail.png
// (a monitor's page) and two badges into IMG_FOLDER. Run it inside a network namespace, like the
// tests: unshare -n sh -c 'ip link set lo up && node screenshot.js ../../../img'
import { writeFileSync } from "node:fs";
import http from "node:http";
import path from "node:path";
import { launchBrowser, startServer, startTarget } from "./harness.js";

const [folder, secondsText] = process.argv.slice(2);
if (!folder) {
  console.error("usage: node screenshot.js IMG_FOLDER [SECONDS]");
  process.exit(2);
}
const seconds = Number(secondsText || 60);

// An app whose health+json says `warn` every third answer.
async function flaky() {
  let n = 0;
  const server = http.createServer((request, response) => {
    n++;
    response.writeHead(200, { "Content-Type": "application/health+json" });
    response.end(n % 3 === 0 ? '{"status":"warn"}' : '{"status":"pass"}');
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { url: `http://127.0.0.1:${server.address().port}`, close: () => server.close() };
}

const targets = {
  "backup-nas": await startTarget(),
  "home-assistant": await startTarget(),
  "media-center": await startTarget(),
  "photo-library": await flaky(),
  printer: await startTarget(),
  router: await startTarget(),
};
const server = await startServer();
try {
  for (const [name, target] of Object.entries(targets)) await server.register(name, target, { healthy: 2 });
  await new Promise((resolve) => setTimeout(resolve, 15_000));
  targets.printer.fail = true;
  await new Promise((resolve) => setTimeout(resolve, Math.max(0, seconds - 15) * 1000));
  const browser = await launchBrowser();
  try {
    const context = await browser.newContext({ viewport: { width: 1280, height: 560 }, deviceScaleFactor: 1 });
    const page = await context.newPage();
    await page.goto(server.url + "/");
    await page.waitForSelector("html[data-ready='1'][data-live='1']");
    await page.screenshot({ path: path.join(folder, "dashboard.png") });
    await page.setViewportSize({ width: 1280, height: 900 });
    await page.goto(server.url + "/#/monitor/printer");
    await page.waitForSelector("html[data-detail='printer']");
    await page.screenshot({ path: path.join(folder, "dashboard-detail.png") });
  } finally {
    await browser.close();
  }
  for (const [file, route] of [["badge-state.svg", "/badge/media-center.svg"], ["badge-uptime.svg", "/badge/photo-library.svg?uptime=30d"]]) {
    const answer = await fetch(server.url + route);
    writeFileSync(path.join(folder, file), await answer.text());
  }
} finally {
  await server.stop();
  for (const target of Object.values(targets)) await target.close();
}
