// What the browser tests stand on: the real server binary on 127.0.0.1, loopback targets whose
// answer a test flips, and Debian's chromium driven by playwright-core (no browser download).
//
// Environment: HC_SERVER_BIN (default: the workspace's target/debug/healthchecker-server),
// CHROMIUM (default /usr/bin/chromium), ARTIFACTS (default ./artifacts: a screenshot of each
// failed test goes there).

import { spawn } from "node:child_process";
import { mkdtempSync, mkdirSync, rmSync } from "node:fs";
import http from "node:http";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = path.dirname(fileURLToPath(import.meta.url));
export const SERVER_BIN =
  process.env.HC_SERVER_BIN || path.resolve(here, "../../../target/debug/healthchecker-server");
export const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
export const ARTIFACTS = process.env.ARTIFACTS || path.join(here, "artifacts");

/** How long anything may take before a test gives up. */
export const PATIENCE_MS = 30_000;

/** A loopback app whose /health passes until `fail` is set, then answers 503. */
export async function startTarget() {
  const target = { fail: false, hits: 0 };
  const server = http.createServer((request, response) => {
    target.hits++;
    if (target.fail) {
      response.writeHead(503, { "Content-Type": "application/health+json" });
      response.end('{"status":"fail"}');
    } else {
      response.writeHead(200, { "Content-Type": "application/health+json" });
      response.end('{"status":"pass"}');
    }
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  target.url = `http://127.0.0.1:${server.address().port}`;
  target.close = () => new Promise((resolve) => server.close(resolve));
  return target;
}

/** The real server on 127.0.0.1 (mDNS off, mail only logged), in a fresh data folder. */
export async function startServer({ token, readToken } = {}) {
  const dir = mkdtempSync(path.join(tmpdir(), "hc-browser-"));
  const args = ["--no-mdns", "--bind-addr", "127.0.0.1", "--data-dir", path.join(dir, "data"), "--test"];
    if (token) args.push("--token", token);
  if (readToken) args.push("--read-token", readToken);
  const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith("HEALTHCHECKER_")));
  env.NO_COLOR = "1";
  delete env.RUST_LOG;
  const child = spawn(SERVER_BIN, args, { cwd: dir, env, stdio: ["ignore", "ignore", "pipe"] });
  const log = [];
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("the server did not start:\n" + log.join(""))), PATIENCE_MS);
    child.on("error", reject);
    child.on("exit", (code) => reject(new Error(`the server exited (${code}):\n` + log.join(""))));
    child.stderr.setEncoding("utf8");
    child.stderr.on("data", (chunk) => {
      log.push(chunk);
      const found = /listening on (http:\/\/\S+)/.exec(log.join(""));
      if (found) {
        clearTimeout(timer);
        resolve(found[1]);
      }
    });
  });
  const server = { url, token, log, dir };
  server.stop = async () => {
    if (child.exitCode === null) {
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  server.api = async (method, route, body) => {
    const headers = { Accept: "application/json" };
    if (token) headers.Authorization = "Bearer " + token;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const answer = await fetch(url + route, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await answer.text();
    return { status: answer.status, body: text ? JSON.parse(text) : null };
  };
  server.register = async (app, target, extra = {}) => {
    const answer = await server.api("PUT", "/api/v1/monitors/" + encodeURIComponent(app), {
      url: target.url, interval: 5, timeout: 2, unhealthy: 2, healthy: 2, ...extra,
    });
    if (answer.status !== 201 && answer.status !== 200) throw new Error(`register ${app}: ${answer.status} ${JSON.stringify(answer.body)}`);
    return answer.body;
  };
  /** Polls `route` until `accept(body)` holds. */
  server.waitFor = async (route, accept, what) => {
    const deadline = Date.now() + PATIENCE_MS;
    for (;;) {
      const answer = await server.api("GET", route);
      if (answer.status === 200 && accept(answer.body)) return answer.body;
      if (Date.now() > deadline) throw new Error(`${what} not within ${PATIENCE_MS} ms: ${JSON.stringify(answer.body)}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  };
  return server;
}

/**
 * Debian's chromium, headless. playwright's `launch` gives it a fresh profile (its own
 * `--user-data-dir` in a temporary folder, removed on close).
 */
export async function launchBrowser() {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--no-first-run",
    ],
  });
}

/**
 * A page in a new context that records every console error and page error into `errors`.
 * `options` are playwright's context options (a viewport, a colour scheme).
 */
export async function openPage(browser, options = {}) {
  const context = await browser.newContext(options);
  const page = await context.newPage();
  const errors = [];
  page.on("console", (message) => {
    if (message.type() === "error") errors.push("console: " + message.text());
  });
  page.on("pageerror", (error) => errors.push("page: " + error.message));
  page.on("requestfailed", (request) => {
    // An event stream closed by the page itself is not a failure.
    if (!request.url().includes("/api/v1/events")) errors.push("request failed: " + request.url());
  });
  return { page, context, errors };
}

/**
 * Runs `body(page)`; when it throws, keeps a screenshot of the page as
 * ARTIFACTS/<name>.png and throws again.
 */
export async function withScreenshot(name, page, body) {
  try {
    await body();
  } catch (error) {
    mkdirSync(ARTIFACTS, { recursive: true });
    const file = path.join(ARTIFACTS, name.replace(/[^a-z0-9-]+/gi, "_") + ".png");
    await page.screenshot({ path: file, fullPage: true }).catch(() => {});
    error.message += `\n(screenshot: ${file})`;
    throw error;
  }
}
