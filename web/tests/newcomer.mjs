// A newcomer opens the address `entente up` printed and signs in with the
// admin account it named: the client loads, and they can post.
import assert from "node:assert/strict";
import { say, scenario, shot, signIn, step } from "./lib.mjs";

await scenario(async (browser) => {
  step(`open ${process.env.ENTENTE_URL} and sign in as ${process.env.ENTENTE_USER}`);
  const first = await (await browser.newContext()).newPage();
  await first.goto(`${process.env.ENTENTE_URL}/`);
  await first.locator("#username").waitFor();
  assert.equal(await first.evaluate(() => document.activeElement?.id), "username", "focus starts on the username");
  const page = await signIn(browser, process.env.ENTENTE_USER, process.env.ENTENTE_PASSWORD);
  await page.getByRole("link", { name: "New channel" }).click();
  await page.getByLabel(/^Name/).fill("first-steps");
  await page.getByRole("button", { name: "Create" }).click();
  await page.locator("#channel-title", { hasText: "first-steps" }).waitFor();
  await say(page, "Hello from the edge site");
  await page.locator(".history article.post", { hasText: "Hello from the edge site" }).waitFor();
  await shot(page, "edge-site");
});
