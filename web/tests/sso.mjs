// Single sign-on in the browser: the sign-in page shows the identity
// provider's button; the provider's own login form signs the person in,
// and they come back to the client signed in, their name from the provider.
import assert from "node:assert/strict";
import { base, scenario, shot, step, watch } from "./lib.mjs";

await scenario(async (browser) => {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  watch(page, "alice");
  await page.goto(`${base}/`);
  step("the sign-in page offers the provider");
  const button = page.getByRole("link", { name: "Sign in with Agency ID" });
  await button.waitFor();
  assert.equal(await page.evaluate(() => document.activeElement?.textContent), "Sign in with Agency ID", "focus starts on the button");
  await shot(page, "sso-sign-in-page");
  await button.click();

  step("the provider's own form");
  await page.locator('input[name="login"]').fill("alice");
  await page.locator('input[name="password"]').fill("anything");
  await page.locator('button[type="submit"]').click();

  step("back in the client, signed in");
  await page.locator('nav.sidebar[aria-busy="false"]').waitFor({ timeout: 20000 });
  assert.equal(await page.locator(".top .me").textContent(), "Alice Martin");
  assert.ok(!page.url().includes("code="), "no code left in the address");
  await shot(page, "sso-signed-in");

  step("signing out ends the session here and at the provider");
  await page.getByRole("button", { name: "Sign out" }).click();
  // The provider asks whether to end its session too.
  await page.getByRole("button", { name: /sign me out/i }).click();
  await page.getByRole("link", { name: "Sign in with Agency ID" }).click();
  // Its session is gone: it asks who this is again.
  await page.locator('input[name="login"]').waitFor();

  step("someone from a tenant not allowed is told why on the sign-in page");
  const other = await (await browser.newContext()).newPage();
  watch(other, "mallory");
  await other.goto(`${base}/`);
  await other.getByRole("link", { name: "Sign in with Agency ID" }).click();
  await other.locator('input[name="login"]').fill("mallory");
  await other.locator('input[name="password"]').fill("anything");
  await other.locator('button[type="submit"]').click();
  await other.getByRole("alert").filter({ hasText: "tenant-elsewhere" }).waitFor({ timeout: 20000 });
  await shot(other, "sso-refused");
});
