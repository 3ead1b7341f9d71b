// What every browser scenario shares: Debian's Chromium through
// playwright-core (never a downloaded browser), signing in through the
// page, screenshots into the artefacts directory, and a failure on any
// error the page itself throws.
//
// The Rust harness (runtime/tests/web.rs) starts the servers and sets:
//   ENTENTE_URL        the workspace's address
//   ENTENTE_ARTEFACTS  where screenshots go
//   ENTENTE_CONTROL    (some scenarios) the harness's control address
import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";
import { join } from "node:path";

export const base = process.env.ENTENTE_URL;
const artefacts = process.env.ENTENTE_ARTEFACTS || "/tmp/entente-web";
mkdirSync(artefacts, { recursive: true });

const problems = [];
const tolerated = [];

/** Page errors matching `pattern` are expected (a test provoking them). */
export function tolerate(pattern) {
  tolerated.push(pattern);
}

export async function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      // Calls: fake microphone and camera, no permission prompt, and host
      // candidates on loopback, where the test's SFU listens.
      "--use-fake-ui-for-media-stream",
      "--use-fake-device-for-media-stream",
      "--allow-loopback-in-peer-connection",
      "--auto-select-desktop-capture-source=Entire screen",
    ],
  });
}

/** A new browser context signed in as `username` through the sign-in page. */
export async function signIn(browser, username, password, { url = base, viewport, colorScheme, locale } = {}) {
  const context = await browser.newContext({
    viewport: viewport || { width: 1280, height: 800 },
    colorScheme: colorScheme || "light",
    locale: locale || "en-GB",
    acceptDownloads: true,
  });
  await context.grantPermissions(["microphone", "camera"], { origin: url });
  const page = await context.newPage();
  watch(page, username);
  await page.goto(`${url}/`);
  await page.getByLabel(/username|utilisateur/i).fill(username);
  await page.getByLabel(/password|mot de passe/i).fill(password);
  await page.getByRole("button", { name: /sign in|se connecter/i }).click();
  // Signed in, and the channel list has come.
  await page.locator('nav.sidebar[aria-busy="false"]').waitFor();
  return page;
}

/** Fails the scenario on anything the page throws or logs as an error. */
export function watch(page, who) {
  page.on("pageerror", (e) => problems.push(`${who}: page error: ${e.message}`));
  page.on("console", (m) => {
    const text = m.text();
    if (m.type() !== "error" || /Failed to load resource/.test(text)) return;
    if (!tolerated.some((p) => p.test(text))) problems.push(`${who}: console: ${text}`);
  });
}

export async function shot(page, name) {
  const path = join(artefacts, `${name}.png`);
  await page.screenshot({ path, fullPage: false });
  console.log(`screenshot: ${path}`);
}

export function step(text) {
  console.log(`· ${text}`);
}

export async function until(what, check, timeout = 10000) {
  const deadline = Date.now() + timeout;
  let last;
  while (Date.now() < deadline) {
    try {
      last = await check();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what} (last: ${last})`);
}

export async function openChannel(page, name) {
  await page.locator(`nav.sidebar a[data-channel="${name}"]`).click();
  await page.locator("#channel-title").waitFor();
}

export async function say(page, text, { box = "#composer" } = {}) {
  await page.locator(box).fill(text);
  await page.locator(box).press("Enter");
}

/** Runs `body`, closes the browser, and exits non-zero on any failure. */
export async function scenario(body) {
  const browser = await launch();
  let failed = false;
  try {
    await body(browser);
  } catch (e) {
    failed = true;
    console.error(e.stack || e);
    let n = 0;
    for (const context of browser.contexts())
      for (const page of context.pages()) await shot(page, `failure-${++n}`).catch(() => {});
  } finally {
    await browser.close();
  }
  if (problems.length) {
    console.error(`the page reported problems:\n${problems.join("\n")}`);
    failed = true;
  }
  process.exit(failed ? 1 : 0);
}
