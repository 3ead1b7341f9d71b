// The client on a phone (360 px), in the dark theme and in French, and
// used from the keyboard alone.
import assert from "node:assert/strict";
import { openChannel, scenario, shot, signIn, step } from "./lib.mjs";

await scenario(async (browser) => {
  step("a phone: the sidebar folds away behind the menu button");
  const phone = await signIn(browser, "alice", "alice-password-long", {
    viewport: { width: 360, height: 740 },
    colorScheme: "dark",
  });
  assert.equal(await phone.evaluate(() => document.documentElement.dataset.theme), "dark");
  const width = await phone.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(width <= 360, `no sideways scrolling (page is ${width} px wide)`);
  await phone.getByRole("button", { name: "Conversations" }).click();
  await shot(phone, "phone-sidebar");
  await openChannel(phone, "ops");
  await phone.locator(".history article.post").first().waitFor();
  await phone.waitForTimeout(300); // the sidebar slides away
  const overflow = await phone.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(overflow <= 360, `the channel fits (${overflow} px)`);
  await shot(phone, "phone-channel");

  step("French: the interface strings come from the French catalogue");
  const french = await signIn(browser, "bob", "bob-password-long", { locale: "fr-FR" });
  await french.getByRole("button", { name: "Se déconnecter" }).waitFor();
  await french.getByText("Parcourir les canaux").waitFor();
  assert.equal(await french.evaluate(() => document.documentElement.lang), "fr");
  await shot(french, "french");

  step("the keyboard alone: reach a channel, write, send");
  const keys = await signIn(browser, "bob", "bob-password-long");
  await keys.keyboard.press("Tab"); // the skip link
  await keys.keyboard.press("Enter");
  await keys.locator(".sidebar").waitFor();
  for (let i = 0; i < 40; i++) {
    await keys.keyboard.press("Tab");
    const channel = await keys.evaluate(() => document.activeElement?.dataset?.channel);
    if (channel === "ops") break;
  }
  await keys.keyboard.press("Enter");
  await keys.locator("#channel-title", { hasText: "ops" }).waitFor();
  await keys.locator("#composer").focus();
  await keys.keyboard.type("Typed without a mouse");
  await keys.keyboard.press("Enter");
  await keys.locator(".history article.post", { hasText: "Typed without a mouse" }).waitFor();

  step("every control has a name a screen reader can read");
  const unnamed = await keys.evaluate(() =>
    [...document.querySelectorAll("button, a[href], input, textarea, select")]
      .filter((e) => e.offsetParent !== null && !e.closest('[aria-hidden="true"]'))
      .filter((e) => {
        const label = e.getAttribute("aria-label") || e.labels?.[0]?.textContent || e.textContent || e.getAttribute("title");
        return !label || !label.trim();
      })
      .map((e) => e.outerHTML.slice(0, 80)),
  );
  assert.deepEqual(unnamed, []);
  await shot(keys, "desktop-light");
});
