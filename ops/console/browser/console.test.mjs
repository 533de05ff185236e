// Browser tests of Switchboard's operator console: Debian's Chromium driven
// by Playwright (playwright-core, no downloaded browser). Started by the
// Rust test `console_browser` (api/tests/it/console_browser.rs), which runs
// a Switchboard with three simulated BBB servers, creates a meeting through
// the BBB API and passes, in the environment:
//   CONSOLE_URL      e.g. http://127.0.0.1:PORT/console
//   ADMIN_API        e.g. http://127.0.0.1:PORT/api/v1
//   ADMIN_TOKEN, READ_TOKEN, DOOMED_TOKEN (admin; revoked by this script),
//   DOOMED_TOKEN_NAME, MEETING_ID, PAST (UTC, before the actions here),
//   SCREENSHOTS      folder for the screenshots (kept as CI artifacts)
//   CHROMIUM         the browser (default /usr/bin/chromium)
// Exits non-zero, saying which step failed, on any failure.
import { chromium } from "playwright-core";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { join } from "node:path";

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const CONSOLE = env("CONSOLE_URL");
const API = env("ADMIN_API");
const ADMIN = env("ADMIN_TOKEN");
const READ = env("READ_TOKEN");
const DOOMED = env("DOOMED_TOKEN");
const DOOMED_NAME = env("DOOMED_TOKEN_NAME");
const MEETING = env("MEETING_ID");
const PAST = env("PAST");
const SHOTS = env("SCREENSHOTS");
mkdirSync(SHOTS, { recursive: true });

async function api(method, path, token = ADMIN) {
  const response = await fetch(`${API}${path}`, {
    method,
    headers: { Authorization: `Bearer ${token}` },
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : null };
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
});
const cspViolations = [];

async function newPage(options = {}) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, ...options });
  const page = await context.newPage();
  page.on("console", (message) => {
    if (/Content Security Policy|Refused to/i.test(message.text())) cspViolations.push(message.text());
  });
  page.on("pageerror", (error) => cspViolations.push(`page error: ${error.message}`));
  return page;
}

async function signIn(page, token) {
  await page.goto(`${CONSOLE}/`);
  assert.match(page.url(), /\/sign-in$/, "an unsigned visit is sent to sign in");
  await page.getByLabel("Admin or read token").fill(token);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("heading", { level: 1, name: "Overview" }).waitFor();
}

let step = "start";
try {
  step = "sign in with an admin token and see the three servers";
  const page = await newPage();
  await page.goto(`${CONSOLE}/sign-in`);
  await page.getByLabel("Admin or read token").fill("sbt_not_a_token");
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("alert").filter({ hasText: "unknown" }).waitFor();
  await signIn(page, ADMIN);
  const cards = page.locator('ul[aria-label="Servers"] > li.card');
  assert.equal(await cards.count(), 3, "three simulated servers");
  await page.screenshot({ path: join(SHOTS, "overview.png"), fullPage: true });
  await page.keyboard.press("Tab");
  assert.equal(await page.evaluate(() => document.activeElement.textContent), "Skip to content");

  step = "see the meeting created through the BBB API";
  await page.getByRole("link", { name: "Meetings", exact: true }).click();
  await page.getByRole("link", { name: MEETING }).click();
  await page.getByRole("heading", { name: `Meeting ${MEETING}` }).waitFor();
  await page.getByRole("heading", { name: "Attendees" }).waitFor();
  await page.getByRole("cell", { name: "MeetingCreated" }).first().waitFor();
  await page.screenshot({ path: join(SHOTS, "meeting.png"), fullPage: true });

  step = "cordon a server through the page and see it in the admin API";
  // The server with the meeting first, so the cordon does not drain it at once.
  const servers = (await api("GET", "/servers")).body.sort((a, b) => b.meetings - a.meetings);
  assert.equal(servers[0].meetings, 1, "the meeting runs on one server");
  const host = new URL(servers[0].url).host;
  await page.goto(`${CONSOLE}/servers/${servers[0].id}`);
  let asked = "";
  const posts = [];
  page.on("request", (request) => { if (request.method() === "POST") posts.push(request.url()); });
  page.once("dialog", (dialog) => { asked = dialog.message(); dialog.dismiss(); });
  await page.getByRole("button", { name: "Panic" }).click();
  await page.waitForTimeout(500);
  assert.match(asked, /disabled at once/, "Panic explains what it does before it is done");
  assert.deepEqual(posts, [], "a dismissed Panic sends nothing");
  assert.equal((await api("GET", `/servers/${servers[0].id}`)).body.state, "enabled", "a dismissed Panic does nothing");
  page.once("dialog", (dialog) => { asked = dialog.message(); dialog.accept(); });
  await page.getByRole("button", { name: "Cordon" }).click();
  await page.getByText("Server cordoned").waitFor();
  assert.match(asked, new RegExp(`Cordon ${host.replace(/[.]/g, "\\.")}`));
  assert.equal((await api("GET", `/servers/${servers[0].id}`)).body.state, "cordoned");
  const cordoned = await api("GET", `/events?stream=server:${servers[0].id}&type=ServerCordoned`);
  assert.equal(cordoned.body.events.at(-1).actor, "console-admin", "the event names the token");
  await page.screenshot({ path: join(SHOTS, "server-cordoned.png"), fullPage: true });

  step = "see a change made elsewhere without reloading";
  await page.goto(`${CONSOLE}/`);
  const second = page.locator("li.card", { hasText: new URL(servers[1].url).host });
  await second.locator(".badge.state", { hasText: "enabled" }).waitFor();
  assert.equal((await api("POST", `/servers/${servers[1].id}/disable`)).status, 200);
  await second.locator(".badge.state", { hasText: "disabled" }).waitFor({ timeout: 15000 });

  step = "a read token is refused an action";
  const reader = await newPage();
  await signIn(reader, READ);
  await reader.goto(`${CONSOLE}/servers/${servers[2].id}`);
  for (const name of ["Enable", "Cordon", "Disable", "Panic"]) {
    assert.ok(await reader.getByRole("button", { name }).isDisabled(), `${name} is disabled for a read token`);
  }
  const refused = await reader.evaluate(async (href) => {
    const csrf = document.querySelector('input[name="_csrf"]').value;
    const response = await fetch(href, {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: `_csrf=${csrf}`,
    });
    return { status: response.status, text: await response.text() };
  }, `${CONSOLE}/servers/${servers[2].id}/cordon`);
  assert.equal(refused.status, 403);
  assert.match(refused.text, /admin token/);
  // Through the page too (the button forced on): the refusal shows in it.
  await reader.evaluate(() => {
    document.querySelectorAll("button:disabled").forEach((button) => { button.disabled = false; });
  });
  reader.once("dialog", (dialog) => dialog.accept());
  await reader.getByRole("button", { name: "Cordon" }).click();
  await reader.locator("#flash").getByRole("alert").filter({ hasText: "admin token" }).waitFor();
  assert.equal((await api("GET", `/servers/${servers[2].id}`)).body.state, "enabled");
  const forged = await page.evaluate(async (href) => {
    const response = await fetch(href, {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: "_csrf=0000",
    });
    return response.status;
  }, `${CONSOLE}/servers/${servers[2].id}/cordon`);
  assert.equal(forged, 403, "an action without the session's CSRF token is refused");
  await reader.screenshot({ path: join(SHOTS, "server-read-token.png"), fullPage: true });

  step = "see the pool at a past time";
  await page.goto(`${CONSOLE}/events`);
  await page.getByRole("cell", { name: "ServerCordoned" }).first().waitFor();
  await page.getByLabel("The pool at (UTC)").fill(PAST);
  await page.getByRole("button", { name: "Show the pool then" }).click();
  await page.getByRole("heading", { level: 1, name: /^The pool at / }).waitFor();
  const then = page.locator('ul[aria-label="Servers"] > li.card');
  assert.equal(await then.count(), 3);
  assert.equal(await page.locator(".badge.state", { hasText: "cordoned" }).count(), 0, "nothing was cordoned then");
  await page.screenshot({ path: join(SHOTS, "pool-at.png"), fullPage: true });

  step = "the charts draw the polled series";
  await page.goto(`${CONSOLE}/charts?hours=1`);
  await page.locator("#charts[data-drawn]").waitFor({ state: "attached", timeout: 15000 });
  assert.ok(Number(await page.locator("#charts").getAttribute("data-drawn")) >= 1, "at least one minute drawn");
  assert.equal(await page.locator("#charts canvas").count(), 3, "three charts");
  await page.screenshot({ path: join(SHOTS, "charts.png"), fullPage: true });

  step = "phone width, dark";
  const phone = await newPage({ viewport: { width: 390, height: 844 }, colorScheme: "dark" });
  await signIn(phone, ADMIN);
  const overflow = await phone.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `no sideways scrolling at phone width (${overflow}px too wide)`);
  await phone.screenshot({ path: join(SHOTS, "overview-phone-dark.png"), fullPage: true });

  step = "revoking the token ends its session";
  const doomed = await newPage();
  await signIn(doomed, DOOMED);
  assert.equal((await api("DELETE", `/tokens/${DOOMED_NAME}`)).status, 204);
  await doomed.waitForURL(/\/sign-in\?ended=1$/, { timeout: 15000 });
  await doomed.getByRole("alert").filter({ hasText: "session ended" }).waitFor();

  step = "no Content-Security-Policy violation or script error";
  assert.deepEqual(cspViolations, []);
  console.log("console browser tests passed; screenshots in", SHOTS);
} catch (error) {
  console.error(`FAILED at step: ${step}`);
  console.error(error);
  process.exitCode = 1;
} finally {
  await browser.close();
}
